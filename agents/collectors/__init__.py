"""Collectors: each one reads one kind of signal on a node and returns samples."""
