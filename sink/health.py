"""Liveness and readiness of the sink daemon: pure decisions, each with its reason.

- **live** while the consumer loop turns, or, during an outage, while it keeps
  trying to reconnect (waiting an outage out is its job; restarting would not help).
  A loop stuck for ``LIVENESS_TIMEOUT_S`` is not live: restart it.
- **ready** while it has change-topic partitions assigned, Kafka and the calendar
  database are reachable, and no partition with messages pending lags more than
  the threshold (``CDCSYNC_SINK_READY_MAX_LAG_S``). A caught-up partition whose
  source went quiet is no reason to pull the sink: ``cdcsync_source_heartbeat_age_seconds``
  alerts on that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cdcsync.sink.lag import PartitionLag

# Longer than the longest backoff wait (30 s plus jitter) plus a connect timeout (10 s).
LIVENESS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def liveness(last_activity_age: float, timeout_s: float = LIVENESS_TIMEOUT_S) -> Verdict:
    """``last_activity_age``: seconds since the loop last turned or last tried to reconnect."""
    if last_activity_age > timeout_s:
        return Verdict(False, f"the consumer loop has not turned for {last_activity_age:.0f}s (limit {timeout_s:.0f}s)")
    return Verdict(True, f"the consumer loop turned {last_activity_age:.1f}s ago")


def readiness(
    started: bool,
    assigned: int,
    down: Mapping[str, float] | Iterable[str],
    lags: Iterable[PartitionLag],
    max_lag_s: float,
) -> Verdict:
    """Every reason that holds, in one line, or ready."""
    reasons = []
    if not started:
        reasons.append("starting: not consuming yet")
    reasons.extend(f"{dependency} unavailable" for dependency in sorted(down))
    if started and assigned == 0:
        reasons.append("no partitions assigned")
    behind = [
        f"{lag.topic}[{lag.partition}] {lag.seconds:.0f}s ({lag.messages} messages)"
        for lag in lags
        if lag.messages and lag.seconds is not None and lag.seconds > max_lag_s
    ]
    if behind:
        reasons.append(f"lag over {max_lag_s:g}s: {', '.join(behind)}")
    if reasons:
        return Verdict(False, "not ready: " + "; ".join(reasons))
    return Verdict(True, "ready")
