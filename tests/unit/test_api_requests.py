"""The HTTP API's pure parts: form parsing, idempotency ids, authorization, errors and pagination."""

from typing import Any

import pytest
from multidict import MultiDict, MultiDictProxy
from pydantic import SecretStr

from worker.core.ids import transaction_id
from worker.web.api import authorize, event_id_for, parse_command, same_request
from worker.web.errors import ApiError
from worker.web.listing import ListParams, list_object, page


def form(*pairs: tuple[str, str]) -> MultiDictProxy[str]:
    return MultiDictProxy(MultiDict(pairs))


def error(exc: pytest.ExceptionInfo[ApiError]) -> dict[str, Any]:
    body: dict[str, Any] = exc.value.body()["error"]
    return {"status": exc.value.status, **body}


def test_form_parameters_become_a_command_exactly_as_stripe_sends_them() -> None:
    cmd = parse_command(
        "cus_1",
        form(("amount", "-500"), ("currency", "USD"), ("description", "goodwill"), ("metadata[ticket]", "T-1")),
    )
    assert (cmd.amount, cmd.currency, cmd.description, cmd.metadata) == (-500, "usd", "goodwill", {"ticket": "T-1"})
    assert parse_command("cus_1", form(("amount", "7"), ("currency", "eur"), ("metadata[gone]", ""))).metadata == {}


@pytest.mark.parametrize(
    ("pairs", "status", "code", "param"),
    [
        ([("currency", "usd")], 400, "parameter_missing", "amount"),
        ([("amount", "5")], 400, "parameter_missing", "currency"),
        ([("amount", "5.0"), ("currency", "usd")], 400, "parameter_invalid_integer", "amount"),
        ([("amount", "1_000"), ("currency", "usd")], 400, "parameter_invalid_integer", "amount"),
        ([("amount", "0"), ("currency", "usd")], 400, "parameter_invalid_integer", "amount"),
        ([("amount", "5"), ("currency", "xyz")], 400, "parameter_invalid_string", "currency"),
        ([("amount", "5"), ("currency", "usdollar")], 400, "parameter_invalid", "currency"),
        ([("amount", "5"), ("currency", "usd"), ("description", "x" * 351)], 400, "parameter_invalid", "description"),
        ([("amount", "5"), ("currency", "usd"), ("metadata[" + "k" * 41 + "]", "v")], 400, "parameter_invalid", None),
        ([("amount", "5"), ("currency", "usd"), ("customer", "cus_2")], 400, "parameter_unknown", "customer"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_sent(
    pairs: list[tuple[str, str]], status: int, code: str, param: str | None
) -> None:
    with pytest.raises(ApiError) as exc:
        parse_command("cus_1", form(*pairs))
    got = error(exc)
    assert (got["status"], got["code"], got["type"]) == (status, code, "invalid_request_error")
    if param is not None:
        assert got["param"] == param
    else:
        assert got["param"].startswith("metadata[")


def test_the_event_id_depends_on_customer_and_key_only() -> None:
    assert event_id_for("cus_1", "k") == event_id_for("cus_1", "k")
    assert event_id_for("cus_1", "k") != event_id_for("cus_2", "k") != event_id_for("cus_2", "k2")
    assert event_id_for("cus_1", "k").startswith("evt_api_")
    assert transaction_id(event_id_for("cus_1", "k"), 0).startswith("cbtxn_")


def test_a_reused_key_matches_only_the_same_parameters() -> None:
    cmd = parse_command("cus_1", form(("amount", "-5"), ("currency", "usd"), ("metadata[a]", "b")))
    txn = {"type": "adjustment", "amount": -5, "currency": "usd", "description": None, "metadata": {"a": "b"}}
    assert same_request(txn, cmd)
    assert not same_request({**txn, "amount": -6}, cmd)
    assert not same_request({**txn, "metadata": {}}, cmd)
    assert not same_request({**txn, "description": "x"}, cmd)


def test_writes_need_the_token_and_are_disabled_without_one() -> None:
    token = SecretStr("sk_test_1")
    authorize(token, "Bearer sk_test_1")
    with pytest.raises(ApiError) as disabled:
        authorize(None, "Bearer sk_test_1")
    assert error(disabled)["status"] == 403
    for header in ("", "Bearer", "Bearer sk_test_2", "Basic sk_test_1"):
        with pytest.raises(ApiError) as refused:
            authorize(token, header)
        assert error(refused)["status"] == 401
        assert "sk_test_1" not in refused.value.message


TXNS = [{"id": f"t{i}", "created": 100 - i} for i in range(7)]  # newest first


@pytest.mark.parametrize(
    ("query", "ids", "has_more"),
    [
        ({}, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"], False),
        ({"limit": "3"}, ["t0", "t1", "t2"], True),
        ({"limit": "3", "starting_after": "t2"}, ["t3", "t4", "t5"], True),
        ({"limit": "3", "starting_after": "t5"}, ["t6"], False),
        ({"limit": "2", "ending_before": "t4"}, ["t2", "t3"], True),
        ({"limit": "5", "ending_before": "t2"}, ["t0", "t1"], False),
        ({"created[gte]": "97", "created[lt]": "100"}, ["t1", "t2", "t3"], False),
        ({"created[gt]": "98"}, ["t0", "t1"], False),
        ({"created[lte]": "95"}, ["t5", "t6"], False),
        ({"created": "96"}, ["t4"], False),
        ({"filter[type]": "ignored", "expand[]": "data.customer"}, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"], False),
    ],
)
def test_pages_follow_stripes_cursors_newest_first(query: dict[str, str], ids: list[str], has_more: bool) -> None:
    data, more = page(TXNS, ListParams.parse(query))
    assert ([t["id"] for t in data], more) == (ids, has_more)


@pytest.mark.parametrize(
    ("query", "status", "param"),
    [
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "101"}, 400, "limit"),
        ({"limit": "ten"}, 400, "limit"),
        ({"starting_after": "t1", "ending_before": "t3"}, 400, "ending_before"),
        ({"created[after]": "1"}, 400, "created[after]"),
        ({"starting_after": "nope"}, 404, "starting_after"),
    ],
)
def test_bad_list_parameters(query: dict[str, str], status: int, param: str) -> None:
    with pytest.raises(ApiError) as exc:
        page(TXNS, ListParams.parse(query))
    assert (error(exc)["status"], error(exc)["param"]) == (status, param)


def test_list_shape() -> None:
    assert list_object("/v1/x", [], False) == {"object": "list", "data": [], "has_more": False, "url": "/v1/x"}
