"""The notification worker: alert events in, notifications that reach the right person once.

    alerts topic -> kafka_io -> service (alert_store, durable) -> routing -> grouping
        -> stages: mute (silences, inhibition) -> dedup (notification_log, acks) -> retry -> receivers/*

``app.py`` wires it; ``api.py`` serves silences, acks and alerts over HTTP;
``history.py`` sends attempts, silences and acks to ClickHouse through Kafka.
"""
