"""Transforms: validate, aggregate (windows), rules. Each is plain Python, testable without Kafka."""
