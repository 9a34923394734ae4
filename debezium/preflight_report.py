"""What a source preflight found: problems with their fix, and the replication slots it saw. Pure values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

DEFAULT_WAL_WARNING_BYTES = 1 << 30  # 1 GiB
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


@dataclass(frozen=True)
class Problem:
    """One thing that will break (error) or may hurt (warning) a connector, with how to fix it."""

    severity: Severity
    check: str  # e.g. "wal_level", "publication", "primary_key"
    subject: str  # what it is about: a server, a connector, a table, a slot
    message: str
    fix: str

    def lines(self) -> list[str]:
        return [f"{self.severity.upper():7} {self.check}: {self.subject}: {self.message}", f"        fix: {self.fix}"]


@dataclass(frozen=True)
class SlotHealth:
    """A replication slot and the WAL it holds back on its server."""

    server: str
    slot_name: str
    slot_type: str  # "logical" | "physical"
    database: str | None
    plugin: str | None
    active: bool
    retained_bytes: int | None  # pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn); None without a restart_lsn
    wal_status: str | None  # reserved | extended | unreserved | lost

    def over(self, threshold_bytes: int) -> bool:
        return self.retained_bytes is not None and self.retained_bytes >= threshold_bytes


def format_bytes(count: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None -> ``-``."""
    if count is None:
        return "-"
    if abs(count) < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if abs(size) < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"512 MB"``, ``"1048576"`` -> bytes. Raises ``ValueError``."""
    raw = text.strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :]
    if unit not in _UNITS or not number:
        raise ValueError(f"{text!r} is not a size: write e.g. 1GiB, 512MiB or a number of bytes")
    value = int(float(number) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive size")
    return value


def slot_lines(slots: Iterable[SlotHealth], threshold_bytes: int) -> list[str]:
    """A table of the slots: server, slot, state, retained WAL, and ``!`` at or over the threshold (or lost)."""
    rows = [
        (
            s.server,
            s.slot_name,
            "active" if s.active else "idle",
            format_bytes(s.retained_bytes),
            "!" if s.over(threshold_bytes) or s.wal_status == "lost" else "",
        )
        for s in sorted(slots, key=lambda s: (s.server, s.slot_name))
    ]
    if not rows:
        return ["  no replication slot"]
    table = [("server", "slot", "state", "retained WAL", ""), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table
    ]


@dataclass
class PreflightReport:
    """Everything ``check_sources`` found. ``problems`` is sorted, errors first."""

    problems: list[Problem] = field(default_factory=list)
    slots: list[SlotHealth] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # the connectors whose sources were checked
    wal_warning_bytes: int = DEFAULT_WAL_WARNING_BYTES

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def has_warnings(self) -> bool:
        return bool(self.warnings)

    def summary(self) -> str:
        what = f"{len(self.checked)} connector source{'s' if len(self.checked) != 1 else ''}"
        if not self.problems:
            return f"preflight: {what} ready, no problem found"
        return f"preflight: {what} checked: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"

    def lines(self) -> list[str]:
        """Every problem with its fix, then a summary line."""
        return [line for problem in self.problems for line in problem.lines()] + [self.summary()]

    def to_json(self) -> dict[str, Any]:
        """A stable document for scripts: the problems, the slots, the counts."""
        return {
            "ok": not self.has_errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checked": list(self.checked),
            "wal_warning_bytes": self.wal_warning_bytes,
            "problems": [asdict(p) for p in self.problems],
            "slots": [
                {**asdict(s), "over_threshold": s.over(self.wal_warning_bytes)}
                for s in sorted(self.slots, key=lambda s: (s.server, s.slot_name))
            ],
        }


def sorted_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Distinct problems, errors first, then by check and subject (servers shared by connectors report once)."""
    return sorted(set(problems), key=lambda p: (p.severity != "error", p.check, p.subject, p.message))
