"""No Docker engine here: the deployment files are parsed and checked against the code."""

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from worker import metrics as worker_metrics
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


# --- Prometheus, Grafana and Kubernetes -------------------------------------------------------------------------

DEPLOY = ROOT / "deploy"


def metric_names() -> set[str]:
    """Every sample name the worker's collectors expose (counters with `_total`, histograms with their series)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for value in vars(worker_metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + s for s in suffixes[family.type])
    return names


def test_every_metric_the_dashboards_use_exists_in_the_code() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "balance-worker.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bbalance_[a-z_]+\b", expr)}
    known = metric_names()
    assert used and used <= known, used - known
    for family in ("balance_events_total", "balance_consumer_lag", "balance_processing_seconds_bucket"):
        assert family in used, f"the Grafana dashboard lacks {family}"
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} <= uids


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus_scrapes_the_workers(compose: dict[str, Any]) -> None:
    grafana, prometheus = compose["services"]["grafana"], compose["services"]["prometheus"]
    mounts = dict(volume.removesuffix(":ro").split(":") for volume in grafana["volumes"])
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "balance-worker.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert (ROOT / next(src for src, dst in mounts.items() if dst == dashboards_dir)).resolve() == (
        DEPLOY / "grafana" / "dashboards"
    )
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    config_mount = next(v for v in prometheus["volumes"] if v.startswith("./deploy/prometheus.yml:"))
    assert config_mount.split(":")[1] in " ".join(prometheus["command"])
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    sd = job["dns_sd_configs"][0]
    assert (
        sd["names"] == ["worker"]
        and str(sd["port"]) == compose["services"]["worker"]["environment"]["BALANCE_WEB_PORT"]
    )


def test_dockerfile_healthcheck_probes_healthz() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"HEALTHCHECK .*\n.*BALANCE_WEB_PORT.*/healthz", dockerfile)


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    docs = [d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_k8s_statefulset_env_ports_probes_and_data_dir_agree_with_the_code(k8s: dict[str, dict[str, Any]]) -> None:
    sts = k8s["StatefulSet/balance-worker"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    settings_env = {name for name in env if name.startswith(ENV_PREFIX)}
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert settings_env <= fields, settings_env - fields
    plain = {
        k.removeprefix(ENV_PREFIX).lower(): e["value"] for k, e in env.items() if k in settings_env and "value" in e
    }
    settings = Settings.model_validate(plain)
    for secret in ("BALANCE_API_TOKEN", "BALANCE_KAFKA_SASL_PASSWORD"):
        assert "secretKeyRef" in env[secret]["valueFrom"], f"{secret} comes from a Secret"
    port = container["ports"][0]
    assert port["containerPort"] == settings.web_port
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"]["path"] == path and container[probe]["httpGet"]["port"] == port["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claim = sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    assert mounts[claim] == str(settings.data_dir)
    assert str(settings.kafka_ssl_cafile).startswith(mounts["kafka-ca"])
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert f".{sts['spec']['serviceName']}." in env["BALANCE_WEB_HOST"]["value"]


def test_k8s_services_and_pdb_select_the_workers(k8s: dict[str, dict[str, Any]]) -> None:
    sts = k8s["StatefulSet/balance-worker"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    headless = k8s[f"Service/{sts['spec']['serviceName']}"]
    assert headless["spec"]["clusterIP"] == "None"
    container_port = sts["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    for service in (headless, k8s["Service/balance-worker"]):
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == container_port["name"]
    pdb = k8s["PodDisruptionBudget/balance-worker"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1 < sts["spec"]["replicas"]
