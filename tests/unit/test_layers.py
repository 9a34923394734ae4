"""The layers run one way: pipeline uses sink and debezium, which never import pipeline or each other.

The contract is ``[tool.importlinter]`` in pyproject.toml; import-linter checks every import
(including those inside functions) of the installed ``cdcsync`` package. It runs in its own
process: it reconfigures logging, which would silence other tests' loggers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_imports_follow_the_layers() -> None:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(PYPROJECT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout
