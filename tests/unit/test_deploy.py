"""No Docker engine here: the deployment files are parsed and checked against the code."""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_worker_environment_names_real_settings_with_valid_values(compose: dict[str, Any]) -> None:
    env = compose["services"]["worker"]["environment"]
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    settings = Settings.model_validate({k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items()})
    defaults = Settings()
    for name in Settings.model_fields:
        if name.startswith("topic_"):
            assert getattr(settings, name) == getattr(defaults, name), name


def test_worker_reaches_the_kafka_service_and_runs_two_replicas(compose: dict[str, Any]) -> None:
    worker, kafka = compose["services"]["worker"], compose["services"]["kafka"]
    host, port = worker["environment"]["BALANCE_KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert host == "kafka" and f"PLAINTEXT://kafka:{port}" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert worker["deploy"]["replicas"] == 2
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka["environment"]["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"


def test_dockerfile_runs_the_console_script_as_non_root_on_the_web_port(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert f'ENTRYPOINT ["{next(iter(scripts))}"]' in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    web_port = compose["services"]["worker"]["environment"]["BALANCE_WEB_PORT"]
    assert f"EXPOSE {web_port}" in dockerfile
    assert compose["services"]["worker"]["expose"] == [web_port]
    assert "HEALTHCHECK" in dockerfile
    assert compose["services"]["worker"]["build"]["dockerfile"] == "deploy/Dockerfile"
