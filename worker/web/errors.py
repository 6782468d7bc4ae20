"""Errors in Stripe's shape: `{"error": {"type", "code", "message", "param"}}` with the matching status."""

import re
from typing import Any

INTEGER = re.compile(r"-?[0-9]{1,18}")


class ApiError(Exception):
    """An error answer of the HTTP API."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe would send."""
        return {"error": {"type": self.type, "code": self.code, "message": self.message, "param": self.param}}


def missing(param: str) -> ApiError:
    """A required parameter is absent."""
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def parse_integer(param: str, value: str) -> int:
    """A parameter's integer value, or Stripe's error when it is not one."""
    if not INTEGER.fullmatch(value):
        raise ApiError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param)
    return int(value)


def no_such_transaction(txn_id: str, param: str = "id") -> ApiError:
    """A transaction id this worker does not keep."""
    return ApiError(404, f"No such customer balance transaction: '{txn_id}'", code="resource_missing", param=param)
