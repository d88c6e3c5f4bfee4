"""gpuwatch stream processing: Kafka -> validate -> aggregate -> detect -> decide -> sinks."""
