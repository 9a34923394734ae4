"""Initial load: a peer started on the run's sources with an empty target, timed until its initial load is complete.

The time runs from ``start`` to ``wait_ready`` returning, so it includes the peer's own start-up (for cdcsync a
Python process and a consumer-group join, a few seconds); rows/s is the target's rows then over that time.
The sources' change topics hold the connectors' snapshot already (``BenchSources.wait_snapshot``): peers that
read the topics measure their apply, peers that read the databases themselves (Flink CDC) include their snapshot.
"""

from __future__ import annotations

import time
from typing import Any

from cdcsync.pipeline.bench.peer import Peer, PeerContext
from cdcsync.pipeline.bench.process_memory import PeakSampler


def measure_initial_load(peer: Peer, ctx: PeerContext, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    peer.start(ctx)
    with PeakSampler(peer.rss_bytes) as rss:
        peer.wait_ready(timeout)
        seconds = time.monotonic() - started
    rows = peer.target_rows()
    return {
        "seconds": round(seconds, 2),
        "target_rows": rows,
        "rows_per_s": rows / seconds if seconds > 0 else None,
        "peak_rss_bytes": rss.peak,
    }
