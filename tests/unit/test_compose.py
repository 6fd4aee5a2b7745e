"""deploy/docker-compose.yml against the Compose specification, and the rules of this project.

Docker cannot run here, so the file is checked the way `docker compose config` would start:
the YAML (anchors and merge keys resolved) against the Compose spec JSON schema that
check-jsonschema vendors, then what the schema cannot know: health checks, restart policies,
named volumes, the published ports of the reference design, and secrets only from `.env`.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(COMPOSE.read_text())
    return loaded


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    broken = {**compose, "services": {**compose["services"], "web": {"restart": ["always"]}}}
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_the_whole_stack_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"kafka", "postgres", "spark-master", "spark-worker", "spark-job", "grafana"}
    expected |= {"airflow", "producer-stocks", "producer-crypto", "web"}
    assert expected <= set(services)
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"]  # KRaft, no ZooKeeper
    assert "zookeeper" not in services


def test_every_service_restarts_and_reports_health(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("restart") in ("unless-stopped", "always"), name
        assert service.get("healthcheck", {}).get("test"), name
        for needed, how in service.get("depends_on", {}).items():
            assert needed in compose["services"], f"{name} depends on unknown {needed}"
            assert how["condition"] == "service_healthy", f"{name} -> {needed}"


def test_ports_of_the_reference_design(compose: dict[str, Any]) -> None:
    published = {
        name: {str(port).split(":")[0] for port in service.get("ports", [])}
        for name, service in compose["services"].items()
    }
    assert published["grafana"] == {"3000"}
    assert published["airflow"] == {"8082"}
    assert published["spark-master"] == {"8080"}
    assert published["spark-worker"] == {"8081"}
    assert published["kafka"] == {"29092"}
    assert published["postgres"] == {"5432"}


def test_data_lives_in_named_volumes_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    stateful = {"kafka", "postgres", "grafana"}
    for name in stateful:
        sources = {v.split(":")[0] for v in compose["services"][name]["volumes"]}
        assert sources & declared, f"{name} keeps its data in no named volume"


def test_secrets_come_from_env_and_are_documented() -> None:
    text = COMPOSE.read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for name, operator, _default in VARIABLE.findall(text):
        if "PASSWORD" in name or "SECRET" in name:
            assert operator == ":?", f"{name} must be required (${{{name}:?...}}), not defaulted"
        if operator == ":?":
            assert name in documented, f"{name} is required but not in .env.example"
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if re.search(r"PASSWORD|SECRET", key) and value.strip():
            assert "${" in value, f"hard-coded secret: {line.strip()}"
    assert "marketpass" not in text


def test_the_dockerfile_copies_files_that_exist() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            sources = [p for p in line.split()[1:-1] if not p.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    targets = re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.M)
    assert targets == ["app", "airflow"]
