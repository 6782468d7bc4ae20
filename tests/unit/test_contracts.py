"""The committed contracts match the models, and the spec's examples satisfy them."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from worker.contracts import DEPLOY, asyncapi, render
from worker.sample import command, envelope
from worker.settings import Settings

SCHEMAS = DEPLOY / "schemas"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return data


@pytest.mark.parametrize("path", sorted(render()))
def test_committed_file_matches_the_models(path: str) -> None:
    committed = DEPLOY / path
    assert committed.exists(), f"{path} is missing: run `balance-worker contracts`"
    assert committed.read_text() == render()[path], f"{path} drifted from the models: run `balance-worker contracts`"


def test_no_stale_schema_files() -> None:
    assert {f"schemas/{p.name}" for p in SCHEMAS.glob("*.json")} == {p for p in render() if p.startswith("schemas/")}


@pytest.mark.parametrize(
    ("example", "schema"),
    [
        ("customer_balance_transaction.json", "customer_balance_transaction.schema.json"),
        ("credit_balance_summary.json", "credit_balance_summary.schema.json"),
        ("event_adjustment_command.json", "event_envelope.schema.json"),
        ("event_invoice_finalized.json", "event_envelope.schema.json"),
    ],
)
def test_spec_examples_satisfy_the_schemas(shared_dir: Path, example: str, schema: str) -> None:
    instance = json.loads((shared_dir / "spec" / "examples" / example).read_text())
    jsonschema.Draft202012Validator(load(schema)).validate(instance)


def test_schemas_reject_what_the_worker_rejects() -> None:
    validator = jsonschema.Draft202012Validator(load("balance_command.schema.json"))
    assert validator.is_valid(command("cus_1", -5, "usd", "note", k="v"))
    assert not validator.is_valid(command("cus_1", "5", "usd"))  # money is never a string
    assert not validator.is_valid(command("cus_1", -5, "usdx"))
    envelope_validator = jsonschema.Draft202012Validator(load("event_envelope.schema.json"))
    assert envelope_validator.is_valid(envelope("evt_1", "customer_balance.adjustment", {}, 1))
    assert not envelope_validator.is_valid({"id": "evt_1", "type": "x", "created": -1, "livemode": False, "data": {}})


def test_asyncapi_describes_every_topic_with_resolvable_payloads() -> None:
    doc = json.loads((DEPLOY / "asyncapi.json").read_text())
    assert doc == asyncapi() and doc["asyncapi"].startswith("3.")
    defaults = Settings()
    topics = {getattr(defaults, name) for name in Settings.model_fields if name.startswith("topic_")}
    assert {channel["address"] for channel in doc["channels"].values()} == topics
    registry: Registry[Any] = Registry().with_resources(
        (p.name, Resource.from_contents(json.loads(p.read_text()))) for p in SCHEMAS.glob("*.json")
    )
    for name, message in doc["components"]["messages"].items():
        ref = message["payload"]["$ref"]
        assert (DEPLOY / ref).is_file(), f"{name}: {ref}"
        registry.get_or_retrieve(Path(ref).name)
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    actions = {op["channel"]["$ref"].split("/")[-1]: op["action"] for op in doc["operations"].values()}
    assert actions["balanceCommands"] == "receive" and actions["transactions"] == "send"
    assert doc["channels"]["summaries"]["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == ["compact"]
