"""Raw bytes to envelope: payload_too_large, invalid_json, invalid_envelope (spec §1, §4)."""

import json
from typing import Any

import orjson
import pytest

from tests.unit.conftest import FIXTURES_DIR, T0, load_json, raw_event, to_bytes
from worker.core.decode import decode
from worker.core.errors import ErrorCode, LedgerError

LIMIT = 4096


def _code(payload: bytes | None, max_bytes: int = LIMIT) -> ErrorCode:
    with pytest.raises(LedgerError) as info:
        decode(payload, max_bytes)
    return info.value.code


def _valid() -> dict[str, Any]:
    return raw_event(
        "customer_balance.adjustment",
        {"customer": "cus_1", "amount": -5, "currency": "usd"},
        event_id="evt_decode_1",
        created=T0,
    )


def test_valid_envelope_decodes_with_its_fields() -> None:
    env = decode(to_bytes(_valid()), LIMIT)
    assert env.id == "evt_decode_1"
    assert env.type == "customer_balance.adjustment"
    assert env.created == T0
    assert env.livemode is False
    assert env.data.object == {"customer": "cus_1", "amount": -5, "currency": "usd"}


def test_minimal_envelope_without_object_and_api_version_fields() -> None:
    raw = {"id": "e", "type": "x.y", "created": 0, "livemode": True, "data": {"object": {}}}
    env = decode(json.dumps(raw).encode(), LIMIT)
    assert (env.id, env.type, env.created, env.livemode, env.data.object) == ("e", "x.y", 0, True, {})


def test_unknown_fields_are_ignored_at_every_level() -> None:
    raw = _valid()
    raw["pending_webhooks"] = 3
    raw["request"] = {"id": None, "idempotency_key": "k"}
    raw["data"]["previous_attributes"] = {"status": "draft"}
    raw["data"]["object"]["whatever"] = {"nested": [1, 2, 3]}
    env = decode(to_bytes(raw), LIMIT)
    assert env.id == "evt_decode_1"
    assert env.data.object["whatever"] == {"nested": [1, 2, 3]}


def test_real_stripe_event_fixture_decodes() -> None:
    raw = load_json(FIXTURES_DIR / "event.json")
    env = decode((FIXTURES_DIR / "event.json").read_bytes(), 1024 * 1024)
    assert env.id == raw["id"]
    assert env.type == "plan.created"
    assert env.data.object["id"] == raw["data"]["object"]["id"]


# --- payload_too_large -----------------------------------------------------------------------


def test_size_limit_is_inclusive() -> None:
    payload = to_bytes(_valid())
    assert decode(payload, len(payload)).id == "evt_decode_1"
    assert _code(payload, len(payload) - 1) is ErrorCode.PAYLOAD_TOO_LARGE


def test_size_is_counted_in_bytes_not_characters() -> None:
    raw = _valid()
    raw["data"]["object"]["note"] = "€" * 100  # 300 bytes, 100 characters
    payload = to_bytes(raw)
    chars = len(payload.decode())
    assert len(payload) == chars + 200
    assert _code(payload, chars) is ErrorCode.PAYLOAD_TOO_LARGE


def test_payload_too_large_is_checked_before_json() -> None:
    assert _code(b"\xff" * 100, 10) is ErrorCode.PAYLOAD_TOO_LARGE
    assert _code(b"[" * 100, 10) is ErrorCode.PAYLOAD_TOO_LARGE


# --- invalid_json ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{",
        b"not json",
        b"{'id': 'single quotes'}",
        b'{"a": NaN}',
        b"\xff\xfe{\x00}\x00",
        b'{"id": "evt_\xff"}',  # JSON-shaped but not UTF-8
        '{"id": "evt_1"}'.encode("utf-16"),
    ],
)
def test_invalid_json(payload: bytes) -> None:
    assert _code(payload) is ErrorCode.INVALID_JSON


def test_tombstone_is_not_json() -> None:
    assert _code(None) is ErrorCode.INVALID_JSON


def test_huge_integer_in_an_ignored_field_is_still_json() -> None:
    # Valid JSON (an integer beyond 64 bits) in a field the worker ignores must not be invalid_json.
    payload = to_bytes(_valid())[:-1] + b',"huge":100000000000000000000000000000}'
    assert decode(payload, LIMIT).id == "evt_decode_1"


# --- invalid_envelope ------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"[]", b"[1, 2]", b'"evt"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object(payload: bytes) -> None:
    assert _code(payload) is ErrorCode.INVALID_ENVELOPE


def _mutated(path: tuple[str, ...], value: Any = ..., delete: bool = False) -> bytes:
    raw = _valid()
    target = raw
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(raw)


@pytest.mark.parametrize("field", ["id", "type", "created", "livemode", "data"])
def test_missing_required_envelope_field(field: str) -> None:
    assert _code(_mutated((field,), delete=True)) is ErrorCode.INVALID_ENVELOPE


def test_missing_data_object() -> None:
    assert _code(_mutated(("data", "object"), delete=True)) is ErrorCode.INVALID_ENVELOPE


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("id",), ""),
        (("id",), 123),
        (("id",), None),
        (("type",), 5),
        (("type",), None),
        (("created",), -1),
        (("created",), "1700000000"),
        (("created",), 1700000000.0),
        (("created",), 1700000000.5),
        (("created",), True),
        (("created",), None),
        (("livemode",), "false"),
        (("livemode",), 0),
        (("livemode",), None),
        (("data",), []),
        (("data",), "x"),
        (("data",), None),
        (("data", "object"), []),
        (("data", "object"), "in_123"),
        (("data", "object"), None),
        (("data", "object"), 5),
    ],
)
def test_wrong_envelope_field_type(path: tuple[str, ...], value: Any) -> None:
    assert _code(_mutated(path, value)) is ErrorCode.INVALID_ENVELOPE


def test_envelope_errors_come_before_unhandled_type() -> None:
    raw = raw_event("plan.created", {}, event_id="")
    assert _code(to_bytes(raw)) is ErrorCode.INVALID_ENVELOPE


def test_created_zero_is_allowed() -> None:
    assert decode(_mutated(("created",), 0), LIMIT).created == 0


def test_empty_type_is_a_string_and_decodes() -> None:
    assert decode(_mutated(("type",), ""), LIMIT).type == ""
