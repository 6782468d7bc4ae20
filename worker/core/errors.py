"""Error codes of the contract (spec §4) and the exception that carries them."""

from enum import StrEnum

from pydantic import ValidationError


class ErrorCode(StrEnum):
    """Why an input cannot be applied; checks run in this order."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_OBJECT = "invalid_object"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    INVALID_AMOUNT = "invalid_amount"
    LIVEMODE_MISMATCH = "livemode_mismatch"
    INITIAL_AFTER_TRANSACTIONS = "initial_after_transactions"
    INTERNAL_ERROR = "internal_error"
    """Not a contract check: a bug in the worker. The input is kept for replay."""


class LedgerError(Exception):
    """An input the ledger rejects; it goes to the dead-letter topic."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def describe(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """Field paths and reasons of a validation error, never the input values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        parts.append(f"{'.'.join(str(p) for p in (*prefix, *err['loc']))}: {err['msg']}")
    return "; ".join(parts)
