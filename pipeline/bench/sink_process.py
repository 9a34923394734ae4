"""The cdcsync sink as the bench runs it: ``python -m cdcsync.pipeline.bench.sink_process``.

``cdcsync sink run`` reads the shipped topics; the bench's connectors write topics named after the run.
This entry point is the same daemon with the routing of ``CDCSYNC_BENCH_TOPIC_PREFIX`` (the run id: topics
``<prefix>_<service>.public.<table>``); every other setting comes from the sink's variables. SIGTERM stops it
after its batch.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from cdcsync.sink.consumer_loop import SinkDaemon
from cdcsync.sink.settings import SinkSettings
from cdcsync.sink.source_tables import SOURCE_TABLES

TOPIC_PREFIX_ENV = "CDCSYNC_BENCH_TOPIC_PREFIX"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    prefix = os.environ[TOPIC_PREFIX_ENV]
    routing = {f"{prefix}_{table.service}.public.{table.name}": table for table in SOURCE_TABLES}
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    SinkDaemon(SinkSettings.from_env(), routing).run(stop)


if __name__ == "__main__":
    main()
