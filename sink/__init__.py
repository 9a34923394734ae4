"""The sink daemon: Debezium change events in, calendar rows out.

Reading order for a newcomer:
- ``source_tables``: the five source tables the calendar rules read, and their topics.
- ``decoding``: Kafka message bytes -> ``ChangeEvent``, each message in its format: ``json_changes``
  (pure) or ``avro_changes`` (Confluent-framed, schemas from the registry; ``avro_logical_types``
  makes Connect's and Debezium's types exact), then ``change_envelope`` (pure), shared by both.
- ``change_batch``: a consumed batch collapsed to the last change per key (pure).
- ``source_replica``: the sink's own copy of the source rows, with a per-row position guard.
- ``calendar_projection``: the spec's rules, and which calendar rows a batch can affect.
- ``calendar_writer``: one PostgreSQL transaction per batch (replica, calendar rows, offsets).
- ``consumed_batch``: a consumed batch of messages decoded into changes and dead letters (pure).
- ``calendar_database``: the connection, opened again after it drops; errors out as decisions.
- ``reconnect``: backoff (tenacity) and the record of outages; ``sink_state``: the state file.
- ``apply_pipeline``: applies one batch on a worker thread while the loop decodes the next.
- ``consumer_loop``: orchestrates Kafka, dead letters and the writer.
- ``telemetry``: what the loop reports: ``heartbeats`` (Debezium's, read on the side), ``lag`` (per
  partition, pure), ``metrics`` (Prometheus), ``health`` (live, ready), served by ``http_server``;
  ``metrics_reader`` reads them back for ``cdcsync status``.
"""
