"""Publications the connectors read, created ahead of them by a role that may.

Debezium's role has REPLICATION and SELECT only: it may not create a
publication, nor add tables it does not own. Given a publication with exactly
the connector's tables, ``publication.autocreate.mode=filtered`` leaves it as
it is (``PostgresReplicationConnection.isPublicationUpdateRequired``).
"""

from __future__ import annotations

import psycopg

from debezium.connector_spec import ConnectorSpec


def ensure_publication(owner_url: str, spec: ConnectorSpec) -> bool:
    """Create ``spec``'s publication unless it exists; True if created.

    ``owner_url`` connects to the connector's database as its owner or an admin.
    """
    with psycopg.connect(owner_url, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (spec.publication_name,))
        if found.fetchone() is not None:
            return False
        conn.execute(spec.create_publication_statement())
        return True
