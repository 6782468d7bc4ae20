"""Raw message bytes to a validated envelope, with the first three checks of §4."""

import orjson
from pydantic import ValidationError

from worker.core.errors import ErrorCode, LedgerError, describe
from worker.models.events import Envelope

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
"""The default size limit of one input message."""


def decode(payload: bytes | None, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Envelope:
    """Check size, JSON and envelope, in that order; raise `LedgerError` on the first failure."""
    if payload is not None and len(payload) > max_bytes:
        raise LedgerError(ErrorCode.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes is over the limit of {max_bytes}")
    if payload is None:
        raise LedgerError(ErrorCode.INVALID_JSON, "the message has no value (a tombstone)")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise LedgerError(ErrorCode.INVALID_JSON, f"not UTF-8 JSON: {exc.args[0] if exc.args else exc}") from None
    if not isinstance(data, dict):
        raise LedgerError(ErrorCode.INVALID_ENVELOPE, f"the JSON is a {type(data).__name__}, not an object")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise LedgerError(ErrorCode.INVALID_ENVELOPE, describe(exc)) from None
