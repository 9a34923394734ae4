"""The local stack's PostgreSQL tuning: optional settings only when the binaries can take them."""

from __future__ import annotations

import stat
from pathlib import Path

from cdcsync.pipeline.stack.postgres_tuning import ServerFeatures, server_features, tuning_config


def _pg_config(bindir: Path, configure: str, libdir: Path) -> None:
    script = bindir / "pg_config"
    script.write_text(
        f'#!/bin/sh\ncase "$1" in --configure) echo "{configure}";; --pkglibdir) echo "{libdir}";; esac\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_without_features_only_the_core_settings() -> None:
    config = tuning_config(ServerFeatures(lz4=False, pg_stat_statements=False))
    assert "shared_buffers = 512MB  # " in config
    assert "max_wal_size = 4GB" in config
    assert "wal_compression" not in config and "shared_preload_libraries" not in config
    assert all("  # " in line for line in config.splitlines())  # every setting says why


def test_with_features_the_optional_settings() -> None:
    config = tuning_config(ServerFeatures(lz4=True, pg_stat_statements=True))
    assert "wal_compression = lz4" in config
    assert "shared_preload_libraries = 'pg_stat_statements'" in config


def test_features_read_from_pg_config(tmp_path: Path) -> None:
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "pg_stat_statements.so").touch()
    _pg_config(tmp_path, "'--prefix=/x' '--with-lz4' '--with-zstd'", libdir)
    assert server_features(tmp_path) == ServerFeatures(lz4=True, pg_stat_statements=True)


def test_features_absent_without_lz4_or_module(tmp_path: Path) -> None:
    _pg_config(tmp_path, "'--prefix=/x' '--without-readline'", tmp_path / "lib")
    assert server_features(tmp_path) == ServerFeatures(lz4=False, pg_stat_statements=False)


def test_no_pg_config_no_optional_settings(tmp_path: Path) -> None:
    assert server_features(tmp_path) == ServerFeatures(lz4=False, pg_stat_statements=False)
