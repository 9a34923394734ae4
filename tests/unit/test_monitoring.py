"""The shipped alert rules and Grafana dashboard use only metrics the sink exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cdcsync.sink.lag import LagTracker
from cdcsync.sink.metrics import METRIC_NAMES, ScrapeState, SinkMetrics

MONITORING = Path(__file__).resolve().parents[2] / "compose" / "monitoring"
# Series Prometheus itself adds for every target.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds"})
METRIC_NAME = re.compile(r"\b((?:cdcsync|process|python)_[a-z0-9_]+)\b")


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def exported_series() -> set[str]:
    """Every series name a sink's scrape shows, the process collectors' included."""
    metrics = SinkMetrics(LagTracker(), lambda: ScrapeState(0, {}, {}, False, None))
    names = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for sample in family.samples
    }
    return names | METRIC_NAMES


@pytest.mark.parametrize("expr", [rule["expr"] for rule in alert_rules()] + dashboard_expressions())
def test_every_expression_parses_and_names_only_exported_metrics(expr: str) -> None:
    promql_parser.parse(expr.replace("$__rate_interval", "5m"))  # Grafana's variable, as Grafana substitutes it
    referenced = set(METRIC_NAME.findall(expr))
    assert referenced or any(name in expr for name in PROMETHEUS_SERIES), f"no metric in {expr!r}"
    assert referenced <= exported_series(), f"unknown metrics {sorted(referenced - exported_series())} in {expr!r}"


def test_alert_rules_are_complete() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    used = set().union(*(METRIC_NAME.findall(expr) for expr in dashboard_expressions()))
    lag_series = {"cdcsync_sink_lag_seconds", "cdcsync_sink_lag_messages", "cdcsync_source_heartbeat_age_seconds"}
    assert lag_series <= used
