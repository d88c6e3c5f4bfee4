"""The gpuwatch node agent: collectors -> batches -> Kafka."""

__version__ = "0.1.0"
