"""Shared fixtures.

Tests run against their own local stack, under ``.cdcsync/test-stack`` on ports
of its own, so a demo stack on the default ports is left alone. Fixtures start
only the parts a test needs; the session stops whatever it started.
PostgreSQL for the engine tests may instead come from ``CDCSYNC_TEST_ADMIN_URL``
(a role that may create databases).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.stack.postgres import LocalPostgres
from cdcsync.pipeline.targets import TARGET_VARIABLES
from tests.support.stack_reset import reset_test_stack

REPO = Path(__file__).resolve().parent.parent
# A password no other text holds, so that a test can search every output and log for it.
TEST_STACK_PASSWORD = "tEst-pw-6d1f0c9a7b"
TEST_STACK_ENV = {
    "CDCSYNC_HOME": str(REPO / ".cdcsync" / "test-stack"),
    "CDCSYNC_PG_PORT": "35432",
    "CDCSYNC_KAFKA_PORT": "39092",
    "CDCSYNC_KAFKA_CONTROLLER_PORT": "39093",
    "CDCSYNC_CONNECT_PORT": "38083",
    "CDCSYNC_REGISTRY_PORT": "38081",
    "CDCSYNC_STACK_PASSWORD": TEST_STACK_PASSWORD,
}
for _key, _value in TEST_STACK_ENV.items():
    os.environ.setdefault(_key, _value)
# Commands run in tests are pointed at the test stack as a user points them at theirs: the local profile.
os.environ["CDCSYNC_PROFILE"] = "local"
# The shipped connectors of the test stack write JSON whatever the shell says; the Avro pipeline is a
# pipeline of its own (tests/integration/conftest.py), on the registry the stack always runs.
os.environ.pop("CDCSYNC_CHANGE_FORMAT", None)
# Tests talk to the test stack only, never to a system named by the shell's environment.
for _key in TARGET_VARIABLES:
    os.environ.pop(_key, None)


def _keep_test_stack() -> bool:
    return bool(os.environ.get("CDCSYNC_KEEP_TEST_STACK"))


class _TestStack:
    """Starts parts on first use, from a known state; ``stop`` stops what this session started."""

    def __init__(self) -> None:
        self.settings = StackSettings.from_env()
        self._reset = False
        self._postgres = False
        self._everything = False

    def _known_state(self) -> None:
        """Once, before the first part is used: a reused kept stack counts as started by this session."""
        if not self._reset:
            self._reset = True
            if reset_test_stack(self.settings, keep=_keep_test_stack()):
                self._postgres = self._everything = True

    def postgres(self) -> StackSettings:
        self._known_state()
        if not self._postgres:
            postgres = LocalPostgres(self.settings)
            postgres.start(timeout=120)
            postgres.bootstrap()
            self._postgres = True
        return self.settings

    def everything(self) -> StackSettings:
        """Every part, the schema registry included: the core integration cases run in both change formats."""
        self._known_state()
        if not self._everything:
            LocalStack(dataclasses.replace(self.settings, change_format="avro")).up(timeout=180)
            self._postgres = self._everything = True
        return self.settings

    def stop(self) -> None:
        if self._everything:
            LocalStack(self.settings).down()
        elif self._postgres:
            LocalPostgres(self.settings).stop()


@pytest.fixture(scope="session")
def test_stack() -> Iterator[_TestStack]:
    stack = _TestStack()
    yield stack
    if not _keep_test_stack():
        stack.stop()


def _admin_url(test_stack: _TestStack) -> str:
    return os.environ.get("CDCSYNC_TEST_ADMIN_URL") or StackEndpoints(test_stack.postgres()).admin_url()


@pytest.fixture
def admin_url(test_stack: _TestStack) -> str:
    """The test stack's PostgreSQL, admin role (for tests that create and drop databases themselves)."""
    return _admin_url(test_stack)


@pytest.fixture
def fresh_database(test_stack: _TestStack) -> Iterator[str]:
    """A new empty database, dropped afterwards; yields its URL (admin role)."""
    admin = _admin_url(test_stack)
    name = f"cdcsync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = name
    yield psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
