"""Runs ``cdcsync`` in-process through ``pipeline.cli.main``, the one place that maps errors to exit codes."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from cdcsync.pipeline.cli import main


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_cdcsync(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    """``cdcsync ARGS``: its exit code and what it printed."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["cdcsync", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return Run(code, out.out, out.err)
