"""The three source services: their schemas (the spec's DDL, verbatim), demo data and a change workload.

``setup`` is what every stack needs; ``demo_data`` and ``workload`` are for demos and tests and are
imported from their modules directly.
"""

from cdcsync.pipeline.sources.setup import SERVICE_TABLES, ensure_source_schemas, schema_ddl

__all__ = ["SERVICE_TABLES", "ensure_source_schemas", "schema_ddl"]
