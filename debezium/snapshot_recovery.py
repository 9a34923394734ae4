"""Recovering an interrupted initial snapshot: a whole-table incremental snapshot of each table it missed.

Debezium re-reads the rows in chunks while streaming goes on; the sink applies them
idempotently (they order after every change already streamed). Once each table's
scan has completed, ``initial_snapshot.decide`` counts the table as recovered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.initial_snapshot import SnapshotState
from cdcsync.debezium.signals import trigger_incremental_snapshot
from cdcsync.debezium.snapshot_notifications import wait_for_snapshot
from cdcsync.debezium.snapshot_states import InitialSnapshotInterrupted, snapshot_states, wait_for_snapshots


def ensure_initial_snapshots(
    client: ConnectClient,
    bootstrap_servers: str,
    specs: Sequence[ConnectorSpec],
    signal_url: Callable[[ConnectorSpec], str],
    *,
    timeout: float = 600.0,
    say: Callable[[str], None] = lambda _line: None,
    registry_url: str | None = None,
) -> list[str]:
    """Wait for running initial snapshots, re-snapshot every table an interrupted one missed, and check
    again; the tables re-snapshotted (``SERVICE.schema.table``). Idempotent: nothing to do, nothing done.

    Raises ``InitialSnapshotInterrupted`` if one is still interrupted afterwards, ``ConnectTimeout``
    if one is still running at ``timeout``.
    """
    states = wait_for_snapshots(
        client, bootstrap_servers, specs, timeout, on_running=lambda s: say(s.summary()), registry_url=registry_url
    )
    interrupted = [s for s in states.values() if s.interrupted]
    for state in interrupted:
        say(state.summary())
    done = recover_interrupted(
        interrupted, specs, signal_url, bootstrap_servers, timeout=timeout, say=say, registry_url=registry_url
    )
    if done:
        states = snapshot_states(client, bootstrap_servers, specs, registry_url=registry_url)
        still = [s for s in states.values() if s.interrupted]
        if still:
            raise InitialSnapshotInterrupted(still)
    return done


def recover_interrupted(
    states: Iterable[SnapshotState],
    specs: Sequence[ConnectorSpec],
    signal_url: Callable[[ConnectorSpec], str],
    bootstrap_servers: str,
    *,
    timeout: float = 600.0,
    say: Callable[[str], None] = lambda _line: None,
    registry_url: str | None = None,
) -> list[str]:
    """Snapshot every table of every interrupted state, one at a time per connector (as Debezium needs),
    each waited for; the tables re-snapshotted as ``SERVICE.schema.table``.

    The connectors must be running (Debezium reads the signal from the WAL).
    Raises ``SnapshotNotFinished`` when one does not finish within ``timeout``.
    """
    by_name = {spec.name: spec for spec in specs}
    done = []
    for state in states:
        if not state.interrupted:
            continue
        spec = by_name[state.connector]
        service = spec.config["database.dbname"]
        for table in state.tables:
            signal_id = trigger_incremental_snapshot(signal_url(spec), spec, table)
            say(f"{state.connector}: re-snapshotting {service}.{table} (signal {signal_id})")
            finished = wait_for_snapshot(
                bootstrap_servers, spec, signal_id, table, timeout=timeout, registry_url=registry_url
            )
            rows = "?" if finished.rows_scanned is None else str(finished.rows_scanned)
            say(f"{state.connector}: {service}.{table} re-snapshotted, {rows} rows")
            done.append(f"{service}.{table}")
    return done
