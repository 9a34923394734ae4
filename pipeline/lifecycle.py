"""``cdcsync up`` and ``down``: the whole pipeline on the local stack, in order.

up: stack parts -> source schemas (and demo data when the sources are empty)
-> connectors, until RUNNING -> the background sink -> initial snapshots complete (an
interrupted one is recovered by re-snapshotting the tables it missed) -> wait until verify is clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cdcsync.debezium.change_format import ChangeFormat, with_formats
from cdcsync.debezium.change_topics import align_change_topics
from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound, ConnectorState
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.debezium.publications import prepare_capture
from cdcsync.debezium.snapshot_recovery import ensure_initial_snapshots
from cdcsync.pipeline.connectors_commands import apply_connector
from cdcsync.pipeline.errors import CdcsyncError, StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.demo_data import load_demo_data
from cdcsync.pipeline.sources.setup import ensure_source_schemas
from cdcsync.pipeline.stack.background_sink import BackgroundSink
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, SERVICE_DATABASES, StackEndpoints
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.stack.processes import wait_until
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.reports import render_report, verify_until_clean

Step = Callable[[str, float], None]  # (what became ready, seconds it took)


def apply_connectors_and_wait(
    connect_url: str, bootstrap_servers: str, timeout: float, change_format: ChangeFormat = ChangeFormat.JSON
) -> list[str]:
    """Create or update every packaged connector in ``change_format``, then wait until all run.

    Returns lines to show. A connector in the other format is re-configured in place
    (same name, slot and offsets): it goes on from where it was, in the new format.
    """
    lines = []
    specs = with_formats(load_connector_specs(), change_format)
    for topic in align_change_topics(bootstrap_servers, specs):
        lines.append(f"topic {topic}: configs aligned with the connector's topic-creation settings")
    with ConnectClient(connect_url) as client:
        for spec in specs:
            outcome = apply_connector(client, spec).value
            lines.append(f"connector {spec.name}: {outcome} ({change_format.value})")
            # A task that failed before its prerequisites existed (say, a missing
            # publication) stays FAILED until restarted; the config may be unchanged.
            if _has_failed_task(client, spec.name):
                client.restart_failed(spec.name)
                lines.append(f"connector {spec.name}: restarted its failed tasks")

        def all_running() -> bool:
            try:
                return all(client.connector_status(spec.name).running for spec in specs)
            except ConnectorNotFound:
                return False

        try:
            wait_until(all_running, timeout, "the connectors to be RUNNING")
        except TimeoutError:
            states = [client.connector_status(spec.name) for spec in specs]
            failed = "; ".join(_why_not_running(state) for state in states if not state.running)
            raise StackError("connect", f"connectors not RUNNING after {timeout:.0f}s: {failed}") from None
    return lines


def prepare_sources(settings: StackSettings, demo_data: bool) -> tuple[list[str], list[str], bool]:
    """The services' tables, the connectors' signal and heartbeat tables and publications, and the demo data.

    Demo data goes only into empty sources. Returns the services whose tables were
    created, the publications created or whose tables were set, and whether demo
    data was loaded. Idempotent. Signal and heartbeat tables come first: a
    publication can only list a table that exists.
    """
    endpoints = StackEndpoints(settings)
    created = [s for s in SERVICE_DATABASES if ensure_source_schemas(s, endpoints.service_url(s))]
    publications = []
    for spec in load_connector_specs():
        if prepare_capture(endpoints.admin_url(spec.config["database.dbname"]), spec, DEBEZIUM_ROLE):
            publications.append(spec.publication_name)
    loaded = demo_data and load_demo_data({s: endpoints.service_url(s) for s in SERVICE_DATABASES})
    return created, publications, loaded


def _has_failed_task(client: ConnectClient, name: str) -> bool:
    try:
        return any(task.state == "FAILED" for task in client.connector_status(name).tasks)
    except ConnectorNotFound:  # just created: its status is not registered yet
        return False


def _why_not_running(state: ConnectorState) -> str:
    traces = [state.trace, *(task.trace for task in state.tasks)]
    cause = next((t.strip().splitlines()[0] for t in traces if t), "no error reported")
    tasks = ", ".join(f"task {t.id} {t.state}" for t in state.tasks) or "no tasks"
    return f"{state.name} {state.state} ({tasks}): {cause[:300]}"


def bring_up(settings: StackSettings, step: Step, demo_data: bool = True, catch_up_timeout: float = 300.0) -> None:
    """Idempotent: parts already running are left as they are."""
    settings.record_change_format()
    had_registry = settings.registry_data_dir.is_dir()
    stack = LocalStack(settings)
    stack.up(timeout=180.0, on_ready=lambda status, seconds: step(f"{status.name}: {status.detail}", seconds))
    targets = Targets.local_stack(settings)

    started = time.monotonic()
    created, publications, loaded = prepare_sources(settings, demo_data)
    step(
        f"source schemas: {'created ' + ', '.join(created) if created else 'present'}; "
        f"publications: {'created ' + ', '.join(publications) if publications else 'present'}"
        f"{'; demo data loaded' if loaded else ''}",
        time.monotonic() - started,
    )

    started = time.monotonic()
    applied = apply_connectors_and_wait(
        targets.connect_url, targets.kafka_bootstrap_servers, timeout=120.0, change_format=settings.format
    )
    for line in applied:
        step(line, time.monotonic() - started)

    started = time.monotonic()
    sink = BackgroundSink(settings.home)
    if settings.registry_wanted and not had_registry and sink.stop():
        step("sink: stopped, to start again with SCHEMA_REGISTRY_URL (the topics get Avro now)", 0.0)
    started_now = sink.start(env={**targets.sink_process_env(), "CDCSYNC_SINK_HTTP": str(settings.sink_http)})
    step(
        f"sink: {'started' if started_now else 'already running'} (log: {sink.log_file};"
        f" metrics: {settings.sink_http.url}/metrics)",
        time.monotonic() - started,
    )

    started = time.monotonic()
    with ConnectClient(targets.connect_url) as client:
        done = ensure_initial_snapshots(
            client,
            targets.kafka_bootstrap_servers,
            load_connector_specs(),
            lambda spec: targets.signal_url(spec.config["database.dbname"]),
            timeout=catch_up_timeout,
            say=lambda line: step(line, time.monotonic() - started),
            registry_url=targets.schema_registry_url,
        )
    step(
        f"initial snapshots: complete{'; re-snapshotted ' + ', '.join(done) if done else ''}",
        time.monotonic() - started,
    )

    started = time.monotonic()
    report = verify_until_clean(targets, catch_up_timeout)
    if not report.clean:
        raise CdcsyncError(
            f"the calendar did not catch up within {catch_up_timeout:.0f}s "
            f"(sink log: {sink.log_file}):\n" + "\n".join(render_report(report, 5))
        )
    step(f"calendar caught up: {report.actual_rows} rows equal the rules", time.monotonic() - started)


def bring_down(settings: StackSettings) -> list[tuple[str, bool]]:
    """Stop the background sink, then the stack parts; (part, was running) pairs."""
    results = [("sink", BackgroundSink(settings.home).stop())]
    results.extend(LocalStack(settings).down())
    return results
