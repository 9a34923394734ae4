"""The layers run one way: pipeline uses sink and debezium, which never import pipeline or each other.

The contract is ``[tool.importlinter]`` in pyproject.toml; import-linter checks every import
(including those inside functions) of the installed ``cdcsync`` package.
"""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_imports_follow_the_layers() -> None:
    assert lint_imports(config_filename=str(PYPROJECT)) == 0, "an import breaks the layers: run .venv/bin/lint-imports"
