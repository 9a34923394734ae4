"""Freshness: commit-to-visible under a paced load, per rate, and cdcsync's per-stage breakdown.

First a warm-up: the same load at the highest rate, unmeasured, for ``warmup_s``, then a drain (below).
A stack the bench has just started runs JVMs that are still compiling their hot code (Connect's C2
threads took ~40% of a core in the first minute), and a peer's caches and pools are cold: without the
warm-up the first rate measures that, not the pipeline.

For each rate the load runs while the probe renames a lecture every ``probe_interval`` seconds and waits
for it in the peer's target. After the rate's time, the load stops and the peer drains what it still had
queued, so the next rate starts from a caught-up peer. A drain waits until every source change is in
Kafka (each bench connector's slot confirmed its database's WAL position), then, for cdcsync, until the
offsets its sink stored reach the topics' ends, then for one more probe (not counted) to be visible. A
probe alone does not show a drain: its lectures partition can be read ahead of another topic's backlog.

cdcsync's stages, per probe: source commit (Debezium's ``source.ts_us``) -> Kafka append (the record
timestamp) -> sink receive (the sink's ``append_to_receive`` histogram over the rate's window, so a
distribution, not per probe) -> calendar commit (the earliest ``synced_at`` of the rows with the probe's
title: the sink's clock at the upsert) -> visible to the probe.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdcsync.pipeline.bench.cdcsync_peer import CdcsyncPeer
from cdcsync.pipeline.bench.dataset import Shape
from cdcsync.pipeline.bench.peer import Peer, PeerContext
from cdcsync.pipeline.bench.probe import POLL_S, PendingProbe, Probe, ProbeResult, TopicWatch
from cdcsync.pipeline.bench.workload import PacedLoad, probe_lectures
from cdcsync.pipeline.stack.processes import wait_until
from cdcsync.sink.metrics import RECEIVE_DELAY

Say = Callable[[str], None]


@dataclass(frozen=True)
class FreshnessPlan:
    rates: tuple[float, ...]
    duration_s: float  # per rate
    probe_interval_s: float
    probe_timeout_s: float
    drain_timeout_s: float
    warmup_s: float = 0.0  # the unmeasured load at the highest rate before the first one; 0: none
    seed: int = 10

    @property
    def warmup_rate(self) -> float:
        return max(self.rates, default=0.0)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def latency_series(results: Sequence[ProbeResult], started_at: float) -> list[list[float | None]]:
    """Each probe as ``[offset_s, latency_s]`` in commit order: its commit's offset from the rate's start
    (epoch ``started_at``) and its commit-to-visible (None: timed out), both to 10 ms, to see a trend."""
    ordered = sorted(results, key=lambda result: result.committed_at)
    return [
        [round(r.committed_at - started_at, 2), None if r.latency_s is None else round(r.latency_s, 2)] for r in ordered
    ]


def histogram_quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """Prometheus-style quantile (q in 0..1) of cumulative ``buckets`` (upper bound -> count), interpolated."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return lower


@dataclass
class _Stages:
    """cdcsync's per-probe stage times, and the receive histogram over the rate's window."""

    commit_to_append: list[float] = field(default_factory=list)
    append_to_calendar: list[float] = field(default_factory=list)
    calendar_to_visible: list[float] = field(default_factory=list)
    receive_before: dict[float, float] = field(default_factory=dict)
    receive_after: dict[float, float] = field(default_factory=dict)

    def result(self) -> dict[str, Any]:
        window = {le: self.receive_after.get(le, 0.0) - self.receive_before.get(le, 0.0) for le in self.receive_after}
        receive = {f"p{int(q * 100)}": histogram_quantile(window, q) for q in (0.5, 0.99)}
        to_calendar = summary(self.append_to_calendar)
        p50 = to_calendar["p50"]
        return {
            "source_commit_to_kafka_append_s": summary(self.commit_to_append),
            "kafka_append_to_sink_receive_s": receive,
            "sink_receive_to_calendar_commit_p50_s": None
            if p50 is None or receive["p50"] is None
            else max(0.0, p50 - receive["p50"]),
            "kafka_append_to_calendar_commit_s": to_calendar,
            "calendar_commit_to_visible_s": summary(self.calendar_to_visible),
        }


def _synced_at(conn: psycopg.Connection[tuple[Any, ...]], result: ProbeResult) -> float | None:
    row = conn.execute(
        "SELECT extract(epoch FROM min(synced_at))::float8 FROM calendar.calendar_entries"
        " WHERE entry_key = 'lecture:' || %s::text AND title = %s",
        (result.lecture_id, result.title),
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


Captured = Callable[[float], Mapping[str, int]]  # waits until every source change is in Kafka; the end offsets


def measure_freshness(
    peer: Peer, ctx: PeerContext, shape: Shape, plan: FreshnessPlan, *, captured: Captured, say: Say
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The warm-up (None without one), and one result per rate: the load achieved, commit-to-visible
    p50/p95/p99/max and over time, and for cdcsync the stages."""
    results: list[dict[str, Any]] = []
    warmup: dict[str, Any] | None = None
    undrained: str | None = None  # what the peer had not drained: the rates after it are not run
    lectures = itertools.cycle(probe_lectures(shape))
    cdcsync = peer if isinstance(peer, CdcsyncPeer) else None
    lecture_topic = ctx.topic("lectures")
    with (
        Probe(ctx.source_urls["course"], ctx.target_url, peer.visible_query(), ctx.target_database) as probe,
        TopicWatch(
            ctx.kafka_bootstrap, lecture_topic, f"{ctx.run_id}-watch-{peer.name}", ctx.stack.registry_url
        ) as watch,
        psycopg.connect(ctx.target_url, autocommit=True) as target,
    ):
        drain = _Drain(probe, lectures, cdcsync, captured, plan.drain_timeout_s)
        if plan.warmup_s > 0 and plan.rates:
            warmup = _warm_up(drain, ctx, shape, plan)
            if warmup["drain_s"] is None:
                undrained = f"the warm-up at {plan.warmup_rate:g}/s"
            say(
                f"  {peer.name} warm-up: {plan.warmup_s:g}s at {plan.warmup_rate:g}/s "
                f"(achieved {warmup['achieved_rate_per_s']}/s), drained in {_ms(warmup['drain_s'])}"
            )
        for rate in plan.rates:
            if undrained is not None:
                reason = f"not run: {peer.name} had not drained {undrained} {plan.drain_timeout_s:g}s after it"
                results.append({"rate_per_s": rate, "skipped": reason})
                say(f"  {peer.name} at {rate:g}/s: {reason}")
                continue
            stages = _Stages()
            if cdcsync is not None:
                stages.receive_before = dict(cdcsync.metrics().get(f"{RECEIVE_DELAY}_bucket", {}))
            latencies: list[float] = []
            visible: list[ProbeResult] = []
            timeouts = 0
            probed: list[ProbeResult] = []
            started_at = time.time()
            with PacedLoad(ctx.source_urls, shape, rate, plan.seed) as load:
                for result in _probe_while(probe, lectures, plan):
                    probed.append(result)
                    if result.latency_s is None:
                        timeouts += 1
                        continue
                    latencies.append(result.latency_s)
                    visible.append(result)
            if cdcsync is not None:  # after the window, so that reading the stages never delays a poll
                for result in visible:
                    _note_stages(stages, result, watch, target)
            if cdcsync is not None:
                stages.receive_after = dict(cdcsync.metrics().get(f"{RECEIVE_DELAY}_bucket", {}))
            drain_s = drain()
            undrained = f"{rate:g}/s" if drain_s is None else None
            entry: dict[str, Any] = {
                "rate_per_s": rate,
                "achieved_rate_per_s": round(load.achieved_rate, 1),
                "changes": load.applied,
                "probes": len(latencies),
                "timeouts": timeouts,
                "probe_timeout_s": plan.probe_timeout_s,
                "commit_to_visible_s": summary(latencies),
                "drain_s": drain_s,
                "latency_over_time": latency_series(probed, started_at),  # [[offset_s, latency_s], ...]
            }
            if cdcsync is not None:
                entry["stages"] = stages.result()
            results.append(entry)
            s = entry["commit_to_visible_s"]
            say(
                f"  {peer.name} at {rate:g}/s (achieved {entry['achieved_rate_per_s']}/s): "
                f"p50 {_ms(s['p50'])} p95 {_ms(s['p95'])} p99 {_ms(s['p99'])} max {_ms(s['max'])}, "
                f"{len(latencies)} probes, {timeouts} timed out, drained in {_ms(drain_s)}"
            )
    return warmup, results


class _Drain:
    """Waits, once the load stopped, until the peer has applied everything; the seconds it took, None if
    not within ``timeout_s``."""

    def __init__(
        self,
        probe: Probe,
        lectures: Iterator[int],
        cdcsync: CdcsyncPeer | None,
        captured: Captured,
        timeout_s: float,
    ) -> None:
        self._probe = probe
        self._lectures = lectures
        self._cdcsync = cdcsync
        self._captured = captured
        self._timeout_s = timeout_s

    def __call__(self) -> float | None:
        started = time.monotonic()
        try:
            ends = self._captured(self._timeout_s)
            if self._cdcsync is not None:
                sink = self._cdcsync
                wait_until(lambda: sink.caught_up(ends), self._left(started), "the sink to apply the load")
        except TimeoutError:
            return None
        last = self._probe.once(next(self._lectures), self._left(started))
        return None if last.latency_s is None else time.monotonic() - started

    def _left(self, started: float) -> float:
        return max(1.0, self._timeout_s - (time.monotonic() - started))


def _warm_up(drain: _Drain, ctx: PeerContext, shape: Shape, plan: FreshnessPlan) -> dict[str, Any]:
    """The load at the highest rate for ``warmup_s``, unmeasured, then the peer drains it."""
    with PacedLoad(ctx.source_urls, shape, plan.warmup_rate, plan.seed + 1) as load:
        load.run_for(plan.warmup_s)
    return {
        "seconds": plan.warmup_s,
        "rate_per_s": plan.warmup_rate,
        "achieved_rate_per_s": round(load.achieved_rate, 1),
        "changes": load.applied,
        "drain_s": drain(),
    }


def _probe_while(probe: Probe, lectures: Iterator[int], plan: FreshnessPlan) -> Iterator[ProbeResult]:
    """A probe every ``probe_interval_s`` for ``duration_s``, overlapping; yields each as it becomes visible or times
    out, until none is pending."""
    started = time.monotonic()
    next_probe = started
    pending: list[PendingProbe] = []
    while True:
        now = time.monotonic()
        probing = now - started < plan.duration_s
        if probing and now >= next_probe:
            pending.append(probe.commit(next(lectures)))
            next_probe += plan.probe_interval_s
        if not probing and not pending:
            return
        for waiting in list(pending):
            if probe.visible(waiting):
                pending.remove(waiting)
                yield waiting.result(time.monotonic() - waiting.started)
            elif time.monotonic() - waiting.started > plan.probe_timeout_s:
                pending.remove(waiting)
                yield waiting.result(None)
        time.sleep(POLL_S)


def _note_stages(stages: _Stages, result: ProbeResult, watch: TopicWatch, target: psycopg.Connection[Any]) -> None:
    times = watch.times(result.title)
    synced = _synced_at(target, result)
    if times is None or synced is None or result.latency_s is None:
        return
    stages.commit_to_append.append(times.kafka_append - times.source_commit)
    stages.append_to_calendar.append(synced - times.kafka_append)
    stages.calendar_to_visible.append(result.committed_at + result.latency_s - synced)


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}ms"
