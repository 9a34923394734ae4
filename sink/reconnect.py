"""Reconnecting: the retry policy, and the record of what is lost since when.

``Reconnector.call`` retries a step that raises ``DependencyUnavailable`` with
capped exponential backoff and jitter (tenacity), until it succeeds or the
daemon is asked to stop. ``Outages`` logs one line when a dependency is lost
and one when it is back (with the outage's duration), never one per retry,
and rewrites the state file on each transition.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential_jitter
from tenacity.wait import wait_base

from sink.errors import DependencyUnavailable
from sink.sink_state import LostDependency, SinkState, write_state

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Waits of ``initial_s * 2**n`` plus up to ``jitter_s`` at random, never more than ``max_s``."""

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 1.0

    def wait(self) -> wait_base:
        return wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s, jitter=self.jitter_s)


@dataclass
class _Outage:
    error: str
    since_wall: datetime
    since: float
    failures: int = 1


class Outages:
    """What the daemon has lost and since when; its state file follows every transition."""

    def __init__(self, state_file: Path | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._state_file = state_file
        self._clock = clock
        self._down: dict[str, _Outage] = {}
        self._state = "starting"
        self._since = datetime.now(UTC)
        self._reason = ""
        self._write()

    def is_down(self, dependency: str) -> bool:
        return dependency in self._down

    def lost(self, error: DependencyUnavailable) -> None:
        """Idempotent: the first call of an outage logs and writes the state; later ones count."""
        text = next(iter(str(error).strip().splitlines()), type(error).__name__)
        outage = self._down.get(error.dependency)
        if outage is not None:
            outage.failures += 1
            if text != outage.error:  # status shows the latest reason, the log only the first
                outage.error = text
                self._write()
            return
        self._down[error.dependency] = _Outage(text, datetime.now(UTC), self._clock())
        logger.warning("%s unavailable, reconnecting with backoff: %s", error.dependency, text)
        self._write()

    def restored(self, dependency: str) -> None:
        outage = self._down.pop(dependency, None)
        if outage is None:
            return
        logger.info(
            "%s back after %.1fs (%d failures meanwhile)", dependency, self._clock() - outage.since, outage.failures
        )
        self._write()

    def running(self) -> None:
        self._transition("running")

    def stopped(self, reason: str = "") -> None:
        self._down.clear()
        self._reason = reason
        self._transition("stopped")

    def _transition(self, state: str) -> None:
        self._state = state
        self._since = datetime.now(UTC)
        self._write()

    def _write(self) -> None:
        if self._state_file is None:
            return
        state = "reconnecting" if self._down and self._state == "running" else self._state
        lost = tuple(
            LostDependency(dependency, outage.since_wall.isoformat(timespec="seconds"), outage.error)
            for dependency, outage in sorted(self._down.items())
        )
        write_state(
            self._state_file,
            SinkState(os.getpid(), state, self._since.isoformat(timespec="seconds"), lost, self._reason),
        )


class Reconnector:
    """Runs steps that need a dependency, retrying them while it is unavailable."""

    def __init__(self, policy: RetryPolicy, outages: Outages, stop: threading.Event) -> None:
        self._policy = policy
        self._outages = outages
        self._stop = stop

    def call(self, step: Callable[[], T], restores: str) -> T:
        """``step()``'s result once it succeeds; ``restores`` is then marked back.

        Raises the last ``DependencyUnavailable`` only if the daemon is asked to stop meanwhile.
        """

        def note_failure(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            if isinstance(error, DependencyUnavailable):
                self._outages.lost(error)

        def sleep(seconds: float) -> None:
            self._stop.wait(seconds)

        retrying = Retrying(
            retry=retry_if_exception_type(DependencyUnavailable),
            wait=self._policy.wait(),
            stop=stop_when_event_set(self._stop),
            sleep=sleep,
            before_sleep=note_failure,
            reraise=True,
        )
        result = retrying(step)
        self._outages.restored(restores)
        return result
