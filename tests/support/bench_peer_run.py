"""A bench peer on sources of a test's own: an isolated pipeline's connectors with schemas in the records.

``peer_context`` applies the pipeline's three connectors (JsonConverter ``schemas.enable=true``, what the
peers need) and gives a ``PeerContext`` on its databases and topics, with a fresh scratch target database.
``probe_title`` commits a new lecture title and polls the peer's ``visible_query`` until it shows.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from cdcsync.debezium.apply import apply_connector
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.pipeline.bench.peer import Peer, PeerContext, SourceTopic
from cdcsync.pipeline.sources.setup import SERVICE_TABLES
from cdcsync.pipeline.stack.endpoints import SERVICE_DATABASES, StackEndpoints
from cdcsync.pipeline.stack.processes import wait_until
from tests.support.isolated_pipeline import IsolatedPipeline

WITH_SCHEMAS = {"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true"}


def peer_context(pipe: IsolatedPipeline, workdir: Path, *, apply: bool = True) -> PeerContext:
    """A target database for a peer on ``pipe``; with ``apply`` (a peer that reads the topics) ``pipe``'s
    connectors (made with ``WITH_SCHEMAS``) are applied first."""
    if apply:
        with ConnectClient(pipe.settings.connect_url) as client:
            for spec in pipe.specs:
                apply_connector(client, spec)
    run_id = f"t{uuid.uuid4().hex[:10]}"
    target = f"{pipe.id}_peer_{run_id}"
    endpoints = StackEndpoints(pipe.settings)
    with psycopg.connect(endpoints.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
    topics = tuple(
        SourceTopic(service, table, f"{pipe.prefix(service)}.public.{table}")
        for service in SERVICE_DATABASES
        for table in SERVICE_TABLES[service]
    )
    workdir.mkdir(parents=True, exist_ok=True)
    return PeerContext(
        stack=pipe.settings,
        source_urls={service: pipe.admin_url(service) for service in SERVICE_DATABASES},
        source_databases={service: pipe.database(service) for service in SERVICE_DATABASES},
        topics=topics,
        kafka_bootstrap=pipe.settings.kafka_bootstrap,
        connect_url=pipe.settings.connect_url,
        target_url=endpoints.admin_url(target),
        target_database=target,
        workdir=workdir,
        run_id=run_id,
        options={"smoke": "1"},
    )


def drop_target(ctx: PeerContext) -> None:
    with psycopg.connect(StackEndpoints(ctx.stack).admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(ctx.target_database)))


def probe_title(peer: Peer, ctx: PeerContext, timeout: float = 60.0) -> float:
    """Commit a new title of some lecture and poll the peer's target until it shows; returns the seconds."""
    title = f"probe {uuid.uuid4().hex[:8]}"
    with psycopg.connect(ctx.source_urls["course"], autocommit=True) as conn:
        row = conn.execute(
            "SELECT l.id FROM public.lectures l WHERE NOT l.cancelled AND EXISTS (SELECT 1 FROM public.enrollments e"
            " WHERE e.course_id = l.course_id AND e.status = 'active') ORDER BY l.id LIMIT 1"
        ).fetchone()
        assert row is not None, "the course database has no attended lecture"
        lecture_id = int(row[0])
        committed = time.monotonic()
        conn.execute("UPDATE public.lectures SET title = %s WHERE id = %s", (title, lecture_id))
    params = {"lecture_id": lecture_id, "title": title}
    query = peer.visible_query()
    assert isinstance(query, sql.SQL | sql.Composed), f"{peer.name}'s visible_query is {type(query).__name__}"
    with psycopg.connect(ctx.target_url, autocommit=True) as target:

        def visible() -> bool:
            return target.execute(query, params).fetchone() is not None

        wait_until(visible, timeout, f"{peer.name} to show the new title", interval=0.005)
    return time.monotonic() - committed
