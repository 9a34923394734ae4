"""The sink's image and its compose service, checked structurally (no Docker engine here)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from cdcsync.sink.http_address import parse_listen_address

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_DIR = REPO / "compose"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text(encoding="utf-8"))
    return dict(document["services"])


def image_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", arguments)))
    return env


def test_build_stage_builds_the_cdcsync_package_from_everything_it_needs() -> None:
    steps = instructions()
    copied = {source for keyword, arguments in steps if keyword == "COPY" for source in arguments.split()[:-1]}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert {"pyproject.toml", project["readme"], "LICENSE", "cdcsync", "pipeline", "sink", "debezium"} <= copied
    for source in copied - {"--from=build", "/wheels"}:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    assert any(
        keyword == "RUN" and "pip wheel" in arguments and arguments.endswith(" .") for keyword, arguments in steps
    )
    assert any(
        keyword == "RUN" and "pip install" in arguments and "/wheels/" in arguments
        for keyword, arguments in final_stage()
    )


def test_images_are_pinned() -> None:
    for keyword, arguments in instructions():
        if keyword == "FROM":
            image = arguments.split()[0]
            assert re.search(r":\d+\.\d+\.\d+", image), f"FROM {image} is not pinned to a version"


def test_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1] not in ("root", "0", "0:0")
    uid = users[-1].split(":")[0]
    assert any(keyword == "RUN" and f"--uid {uid}" in arguments for keyword, arguments in final_stage())


def test_exposes_the_health_port_the_sink_listens_on() -> None:
    exposed = {
        int(port.split("/")[0])
        for keyword, arguments in final_stage()
        if keyword == "EXPOSE"
        for port in arguments.split()
    }
    address = parse_listen_address(image_env()["CDCSYNC_SINK_HTTP"])
    assert address.port in exposed
    assert address.host == "0.0.0.0"  # reachable from outside the container


def test_sink_service_is_healthy_only_when_ready() -> None:
    sink = services()["sink"]
    address = parse_listen_address(str(sink["environment"]["CDCSYNC_SINK_HTTP"]))
    test = sink["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    ast.parse(test[3])  # the probe is valid Python, run by the image's interpreter
    assert f"http://127.0.0.1:{address.port}/readyz" in test[3]
    assert "urlopen" in test[3]  # raises on a 503, so the exit code follows /readyz
    container_ports = [str(p).rsplit(":", 1)[1] for p in sink.get("ports", [])]
    assert str(address.port) in container_ports


def test_prometheus_scrapes_the_sink_and_loads_the_alert_rules() -> None:
    prometheus = services()["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:v")
    mounts = {source: target for source, target, *_ in (volume.split(":") for volume in prometheus["volumes"])}
    config_path = next(source for source, target in mounts.items() if target == "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load((COMPOSE_DIR / config_path).read_text(encoding="utf-8"))
    for rule_file in config["rule_files"]:
        source = next(source for source, target in mounts.items() if target == rule_file)
        assert (COMPOSE_DIR / source).is_file()
    sink_port = parse_listen_address(str(services()["sink"]["environment"]["CDCSYNC_SINK_HTTP"])).port
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"sink:{sink_port}"]
