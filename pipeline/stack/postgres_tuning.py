"""The local stack's PostgreSQL settings for a write-heavy sink: what an operator would set on a developer machine.

The sink upserts in batches all day and the bench adds bulk loads and backlogs on top, so the defaults
(128MB of shared buffers, a checkpoint forced every 1GB of WAL) make the server write pages and full-page
images far more often than it needs to. The values stay modest: the demo, test and bench stacks may run
at once on the same machine (3 x 512MB of shared buffers), and the machine's own binaries (``system``)
may lack what the embedded ones have, so the optional settings are written only when the binaries can
take them, as their ``pg_config`` reports.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

PG_STAT_STATEMENTS = "pg_stat_statements"

# Each line: a setting and, in one line, why.
_SETTINGS = (
    ("shared_buffers", "512MB", "the calendar table and its indexes stay cached; 3 stacks at once take 1.5GB"),
    ("max_wal_size", "4GB", "a bulk load or backlog does not force a checkpoint every 1GB of WAL"),
    ("checkpoint_timeout", "15min", "fewer checkpoints, so fewer full-page images after each"),
    ("checkpoint_completion_target", "0.9", "spread a checkpoint's writes over most of the interval"),
)


@dataclass(frozen=True)
class ServerFeatures:
    """What the binaries were built with, as far as the optional settings need."""

    lz4: bool  # wal_compression = lz4
    pg_stat_statements: bool  # the module is in the server's library directory


def server_features(bindir: Path) -> ServerFeatures:
    """Ask the ``pg_config`` beside the server; without one, assume neither (the settings are left out)."""
    pg_config = bindir / "pg_config"
    if not pg_config.is_file():
        return ServerFeatures(lz4=False, pg_stat_statements=False)

    def ask(option: str) -> str:
        done = subprocess.run([str(pg_config), option], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    libdir = ask("--pkglibdir")
    return ServerFeatures(
        lz4="--with-lz4" in ask("--configure"),
        pg_stat_statements=bool(libdir) and (Path(libdir) / f"{PG_STAT_STATEMENTS}.so").is_file(),
    )


def tuning_config(features: ServerFeatures) -> str:
    """The settings' lines for ``cdcsync.conf``, each with its reason as a comment."""
    settings = list(_SETTINGS)
    if features.lz4:
        settings.append(("wal_compression", "lz4", "full-page images in the WAL compressed cheaply"))
    if features.pg_stat_statements:
        settings.append(
            ("shared_preload_libraries", f"'{PG_STAT_STATEMENTS}'", "per-statement times for the sink's upserts")
        )
    return "".join(f"{name} = {value}  # {reason}\n" for name, value, reason in settings)
