"""The existing change workload, run by several writers at once.

Each writer is a ``ChangeWorkload`` in its own thread with its own connections, so
transactions of the three services interleave; a share of them roll back on purpose,
and some abort on conflicts between writers (a unique key taken meanwhile, a deadlock)
as they would between real clients. While a fault lasts the writers keep trying:
an error from PostgreSQL counts as an aborted transaction, and the next one reconnects.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from types import TracebackType

import psycopg

from cdcsync.pipeline.sources.workload import ChangeWorkload

WRITERS = 3
ROLLBACK_RATE = 0.15
PACE_S = 0.02  # between one writer's transactions: the load stays that of busy services, not a benchmark


class ConcurrentWorkload:
    def __init__(self, urls: Mapping[str, str], seed: int, writers: int = WRITERS) -> None:
        self._urls = dict(urls)
        self._seeds = [seed * 100 + i for i in range(writers)]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._crashes: list[BaseException] = []
        self.committed = 0
        self.rolled_back = 0
        self.aborted = 0

    def __enter__(self) -> ConcurrentWorkload:
        for seed in self._seeds:
            thread = threading.Thread(target=self._write, args=(seed,), name=f"writer-{seed}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        if self._crashes:
            raise AssertionError(f"a workload writer crashed: {self._crashes[0]!r}") from self._crashes[0]

    def wait_for_commits(self, count: int, timeout: float = 120.0) -> None:
        """Until ``count`` more transactions have committed: the sources are writable and load is flowing."""
        target = self.committed + count
        deadline = time.monotonic() + timeout
        while self.committed < target:
            if self._crashes:
                raise AssertionError(f"a workload writer crashed: {self._crashes[0]!r}") from self._crashes[0]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the workload committed {self.committed - target + count} of {count} transactions in {timeout:g}s"
                )
            time.sleep(0.05)

    def _write(self, seed: int) -> None:
        try:
            with ChangeWorkload(self._urls, random.Random(seed), rollback_rate=ROLLBACK_RATE) as workload:
                while not self._stop.is_set():
                    try:
                        change = workload.apply_next()
                    except psycopg.Error:
                        with self._lock:
                            self.aborted += 1
                    else:
                        with self._lock:
                            if change.rolled_back:
                                self.rolled_back += 1
                            else:
                                self.committed += 1
                    self._stop.wait(PACE_S)
        except BaseException as exc:  # surfaced by the test thread
            self._crashes.append(exc)
