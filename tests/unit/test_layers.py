"""The layers run one way: pipeline uses sink and debezium, which never import pipeline or each other.

The contract is ``[tool.importlinter]`` in pyproject.toml; import-linter checks every import
(including those inside functions) of the installed ``cdcsync`` package. It runs as its own
process: in this one it would reconfigure logging under the other tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_imports_follow_the_layers() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(PYPROJECT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
