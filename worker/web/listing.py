"""Stripe's list pagination over a customer's transactions, newest first."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.web.errors import ApiError, no_such_transaction, parse_integer

CREATED_OPS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


@dataclass(frozen=True)
class ListParams:
    """`limit`, one cursor, and `created` bounds of a list request."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> "ListParams":
        """The parameters of a query string; anything else (e.g. `expand[]`) is ignored."""
        limit = cls.limit
        if "limit" in query:
            limit = parse_integer("limit", query["limit"])
            if not 1 <= limit <= 100:
                raise ApiError(400, f"This value must be between 1 and 100 (it currently is {limit}).", param="limit")
        if query.get("starting_after") and query.get("ending_before"):
            raise ApiError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                code="parameters_exclusive",
                param="ending_before",
            )
        created: list[tuple[str, int]] = []
        for name, value in query.items():
            if name == "created":
                created.append(("eq", parse_integer(name, value)))
            elif name.startswith("created[") and name.endswith("]"):
                op = name[len("created[") : -1]
                if op not in CREATED_OPS:
                    raise ApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
                created.append((op, parse_integer(name, value)))
        return cls(limit, query.get("starting_after") or None, query.get("ending_before") or None, tuple(created))


def page(items: list[dict[str, Any]], params: ListParams) -> tuple[list[dict[str, Any]], bool]:
    """The page of `items` (newest first) the parameters select, and whether more lie beyond it."""
    kept = [txn for txn in items if all(_matches(txn["created"], op, bound) for op, bound in params.created)]
    if params.ending_before is not None:
        end = _index(kept, params.ending_before, "ending_before")
        start = max(0, end - params.limit)
        return kept[start:end], start > 0
    start = 0 if params.starting_after is None else _index(kept, params.starting_after, "starting_after") + 1
    return kept[start : start + params.limit], start + params.limit < len(kept)


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """Stripe's list shape."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _matches(created: int, op: str, bound: int) -> bool:
    return created == bound if op == "eq" else bool(CREATED_OPS[op](created, bound))


def _index(items: list[dict[str, Any]], txn_id: str, param: str) -> int:
    for i, txn in enumerate(items):
        if txn["id"] == txn_id:
            return i
    raise no_such_transaction(txn_id, param)
