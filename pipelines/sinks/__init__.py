"""Sinks: where processed data leaves the pipeline (ClickHouse tables, Kafka topics)."""
