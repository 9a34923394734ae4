"""Pipelines of their own on a stack's servers: connectors, databases, slots and topics under fresh names.

The bench (``pipeline.bench``) and the tests that must not touch the shipped connectors build on these:
``own_spec`` derives a connector spec with every name that could collide replaced; ``create_database``
makes a database holding a service's schema, readable by Debezium's role; ``drop_slot`` and
``delete_topics`` remove what such a connector leaves behind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.snapshot_notifications import NOTIFICATION_TOPIC_KEY
from cdcsync.pipeline.sources.setup import ensure_source_schemas
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, StackEndpoints
from cdcsync.pipeline.stack.processes import wait_until

_REMOVE_TIMEOUT_S = 60.0
# A deleted connector's task may hold its slot a while (a long snapshot step); past this it is terminated.
_SLOT_RELEASE_S = 120.0


def own_spec(
    shipped: ConnectorSpec,
    token: str,
    *,
    notification_topic: str | None = None,
    config: Mapping[str, str] | None = None,
) -> ConnectorSpec:
    """``shipped`` under names of its own, all derived from ``token`` (``[a-z0-9_]``, unique).

    Connector name ``token`` with dashes; database, slot, publication and topic prefix ``token``;
    topic-creation rules for its change topics, and for ``notification_topic`` when given (else the
    shipped notification topic stays). ``config`` overrides keys last.
    """
    own = {
        "database.dbname": token,
        "slot.name": token,
        "publication.name": token,
        "topic.prefix": token,
        "topic.creation.changes.include": re.escape(token) + r"\.public\..*",
    }
    if notification_topic is not None:
        own[NOTIFICATION_TOPIC_KEY] = notification_topic
        own["topic.creation.notifications.include"] = re.escape(notification_topic)
    return ConnectorSpec(token.replace("_", "-"), {**shipped.config, **own, **(config or {})})


def shipped_spec(service: str) -> ConnectorSpec:
    """The shipped connector that captures ``service``'s database."""
    return next(spec for spec in load_connector_specs() if spec.config["database.dbname"] == service)


def create_database(endpoints: StackEndpoints, name: str, service: str | None) -> str:
    """A new database, with ``service``'s schema readable by Debezium's role (or empty); its admin URL."""
    with psycopg.connect(endpoints.admin_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = endpoints.admin_url(name)
    if service is not None:
        ensure_source_schemas(service, url)
        role = sql.Identifier(DEBEZIUM_ROLE)
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(name), role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
    return url


def drop_slot(db_url: str, slot: str) -> None:
    """Drop a logical slot (from its own database) once no walsender holds it. A deleted connector's task
    still holding it after ``_SLOT_RELEASE_S`` is terminated."""
    patience = time.monotonic() + _SLOT_RELEASE_S

    def dropped() -> bool:
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row is None:
                return True
            if row[0] is None:
                try:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                except psycopg.errors.ObjectInUse:  # taken again since the query above
                    return False
                return True
            if time.monotonic() > patience:
                conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            return False

    wait_until(dropped, _SLOT_RELEASE_S + _REMOVE_TIMEOUT_S, f"slot {slot} to be released and dropped", interval=0.5)


def delete_topics(bootstrap_servers: str, selected: Callable[[str], bool]) -> None:
    """Delete the existing topics ``selected`` picks, waiting for each deletion."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    topics = sorted(topic for topic in admin.list_topics(timeout=10).topics if selected(topic))
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
