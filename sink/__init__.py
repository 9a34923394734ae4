"""The sink daemon: Debezium change events in, calendar rows out.

Reading order for a newcomer:
- ``source_tables``: the five source tables the calendar rules read, and their topics.
- ``decoding``: Kafka message bytes -> ``ChangeEvent`` (pure).
- ``change_batch``: a consumed batch collapsed to the last change per key (pure).
- ``source_replica``: the sink's own copy of the source rows, with a per-row position guard.
- ``calendar_projection``: the spec's rules, and which calendar rows a batch can affect.
- ``calendar_writer``: one PostgreSQL transaction per batch (replica, calendar rows, offsets).
- ``consumed_batch``: a consumed batch of messages decoded into changes and dead letters (pure).
- ``calendar_database``: the connection, opened again after it drops; errors out as decisions.
- ``reconnect``: backoff (tenacity) and the record of outages; ``sink_state``: the state file.
- ``consumer_loop``: orchestrates Kafka, dead letters and the writer.
"""
