"""One bench run: the sources, then each peer in turn (initial load, for cdcsync the backlog, then freshness).

The backlog comes right after the initial load, while the sink is caught up: the freshness ramp ends at a
rate the peer cannot keep up with, and may leave it far behind.

Peers run one after the other, never together: on a 2-core machine each would take the other's CPU. Each has
an empty target database of its own; the sources are shared, so later peers start from the state the earlier
ones' freshness runs left (the same size, other values). A peer that cannot run is reported with its reason;
one that fails mid-run is reported with the error, and the run goes on with the next.
"""

from __future__ import annotations

import importlib
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from cdcsync.debezium.change_format import ChangeFormat
from cdcsync.pipeline.bench import dataset
from cdcsync.pipeline.bench.backlog import measure_backlog
from cdcsync.pipeline.bench.cdcsync_peer import CdcsyncPeer
from cdcsync.pipeline.bench.freshness import FreshnessPlan, measure_freshness
from cdcsync.pipeline.bench.initial_load import measure_initial_load
from cdcsync.pipeline.bench.peer import PEER_CLASSES, Peer, PeerContext, PeerUnavailable
from cdcsync.pipeline.bench.sources import BenchSources
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.local_stack import LocalStack

Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchPlan:
    source_rows: int
    freshness: FreshnessPlan
    backlog_changes: int
    peers: tuple[str, ...]  # names from PEER_CLASSES, beside cdcsync
    smoke: bool
    workdir: Path
    load_timeout_s: float = 1800.0
    keep_sources: bool = False
    cdcsync: bool = True  # False: the peers only (to measure them again without cdcsync's long runs)
    sink_env: Mapping[str, str] | None = None  # CDCSYNC_SINK_* settings for cdcsync's sink
    change_format: ChangeFormat = ChangeFormat.JSON  # what the run's connectors write


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def load_peer(name: str) -> Peer:
    """The peer ``name`` from its module; PeerUnavailable if the module is not in this build."""
    module_name, _, class_name = PEER_CLASSES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PeerUnavailable(f"not in this build: module {module_name} not found ({exc.name})") from None
    make = getattr(module, class_name, None)
    if make is None:
        raise PeerUnavailable(f"not in this build: {module_name} has no {class_name}")
    peer: Peer = make()
    return peer


def run_bench(stack: StackSettings, plan: BenchPlan, say: Say) -> dict[str, Any]:
    started = datetime.now(UTC)
    LocalStack(stack).up(timeout=300.0)
    shape = dataset.Shape.for_source_rows(plan.source_rows)
    sources = BenchSources(stack, plan.change_format)
    say(f"bench {sources.run_id}: {shape.source_rows:,} source rows -> {shape.calendar_rows:,} calendar rows")
    fresh = plan.freshness
    say(
        f"freshness per peer: warm-up {fresh.warmup_s:g}s at {fresh.warmup_rate:g}/s (unmeasured, then drained), "
        f"then {', '.join(f'{r:g}' for r in fresh.rates)}/s for {fresh.duration_s:g}s each"
    )
    result: dict[str, Any] = {
        "run_id": sources.run_id,
        "started_at": started.isoformat(),
        "machine": machine(),
        "plan": _plan_json(plan),
        "shape": {**asdict(shape), "source_rows": shape.source_rows, "calendar_rows": shape.calendar_rows},
        "peers": [],
    }
    try:
        sources.create(shape, say)
        snapshot_s = sources.wait_snapshot(shape, plan.load_timeout_s)
        result["source_snapshot_s"] = round(snapshot_s, 2)
        say(f"sources: Debezium's snapshot of {shape.source_rows:,} rows in Kafka after {snapshot_s:.1f}s")
        peers: list[tuple[str, Callable[[], Peer]]] = []
        if plan.cdcsync:
            peers.append(("cdcsync", lambda: CdcsyncPeer(plan.sink_env)))
        peers += [(name, lambda name=name: load_peer(name)) for name in plan.peers]  # type: ignore[misc]
        for name, make in peers:
            result["peers"].append(_run_peer(name, make, sources=sources, shape=shape, stack=stack, plan=plan, say=say))
    finally:
        result["finished_at"] = datetime.now(UTC).isoformat()
        if not plan.keep_sources:
            sources.remove()
    return result


def _run_peer(
    name: str,
    make: Callable[[], Peer],
    *,
    sources: BenchSources,
    shape: dataset.Shape,
    stack: StackSettings,
    plan: BenchPlan,
    say: Say,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "status": "measured"}
    if plan.smoke and name != "cdcsync":
        return {
            **entry,
            "status": "skipped",
            "reason": "--smoke runs cdcsync only: a peer's JVM alone takes minutes to start",
        }
    peer: Peer | None = None
    try:
        peer = make()
        entry["name"] = peer.name
        say(f"{peer.name}: initial load ...")
        ctx = _context(sources, stack, plan, peer)
        entry["initial_load"] = measure_initial_load(peer, ctx, plan.load_timeout_s)
        load = entry["initial_load"]
        say(
            f"  {peer.name}: {load['target_rows']:,} rows in {load['seconds']}s = {load['rows_per_s'] or 0:,.0f} rows/s"
        )
        if isinstance(peer, CdcsyncPeer) and plan.backlog_changes:
            say(f"{peer.name}: backlog of {plan.backlog_changes:,} source changes ...")
            try:
                entry["backlog"] = measure_backlog(
                    peer, sources, shape, changes=plan.backlog_changes, timeout=plan.load_timeout_s, say=say
                )
            except TimeoutError as exc:  # the other results stand; the backlog says why it has none
                entry["backlog"] = {"not_run": str(exc)}
                say(f"  backlog: not measured: {exc}")
        say(f"{peer.name}: freshness ...")
        entry["warmup"], entry["freshness"] = measure_freshness(
            peer, ctx, shape, plan.freshness, captured=sources.wait_captured, say=say
        )
        entry["stats"] = dict(peer.stats())
    except PeerUnavailable as exc:
        entry.update(status="unavailable", reason=exc.reason)
        say(f"{name}: cannot run here: {exc.reason}")
    except Exception as exc:
        entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        say(f"{name}: failed: {type(exc).__name__}: {exc}")
    finally:
        if peer is not None:
            try:
                peer.stop()
            except Exception as exc:
                entry.setdefault("reason", f"stop failed: {type(exc).__name__}: {exc}")
    return entry


def _context(sources: BenchSources, stack: StackSettings, plan: BenchPlan, peer: Peer) -> PeerContext:
    slug = peer.name.lower().replace(" ", "_").replace("-", "_")
    target = sources.target_database(slug)
    return PeerContext(
        stack=stack,
        source_urls=sources.urls,
        source_databases={service: sources.database(service) for service in sources.urls},
        topics=sources.topics,
        kafka_bootstrap=stack.kafka_bootstrap,
        connect_url=stack.connect_url,
        target_url=target,
        target_database=f"{sources.run_id}_{slug}",
        workdir=plan.workdir / sources.run_id / slug,
        run_id=sources.run_id,
        options={"smoke": "1" if plan.smoke else ""},
    )


def _plan_json(plan: BenchPlan) -> dict[str, Any]:
    return {
        "change_format": plan.change_format.value,
        "source_rows": plan.source_rows,
        "rates_per_s": list(plan.freshness.rates),
        "seconds_per_rate": plan.freshness.duration_s,
        "warmup_s": plan.freshness.warmup_s,
        "warmup_rate_per_s": plan.freshness.warmup_rate,
        "probe_interval_s": plan.freshness.probe_interval_s,
        "probe_timeout_s": plan.freshness.probe_timeout_s,
        "backlog_changes": plan.backlog_changes,
        "peers": ["cdcsync", *plan.peers] if plan.cdcsync else list(plan.peers),
        "smoke": plan.smoke,
        "sink_settings": dict(plan.sink_env or {}),
    }


def peer_names(selected: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(selected) - set(PEER_CLASSES))
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}; expected some of {', '.join(PEER_CLASSES)}")
    return tuple(selected)
