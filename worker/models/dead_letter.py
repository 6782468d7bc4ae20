"""The dead-letter record: the error, where the input came from, and the input itself."""

import base64
from typing import Literal

from pydantic import BaseModel, ConfigDict

from worker.core.errors import ErrorCode


class DeadLetterError(BaseModel):
    """Why the input was rejected."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str


class DeadLetterSource(BaseModel):
    """Where the input was read; `key` is text, or base64 when not UTF-8."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp: int | None


class DeadLetter(BaseModel):
    """A rejected input with everything needed to replay it."""

    model_config = ConfigDict(frozen=True)

    error: DeadLetterError
    source: DeadLetterSource
    payload: str | None
    payload_encoding: Literal["utf-8", "base64"]
    failed_at: int


def encode_bytes(data: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    """Text as is when it is UTF-8, else base64, with the encoding used."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def dead_letter(
    code: ErrorCode, message: str, source: DeadLetterSource, payload: bytes | None, failed_at: int
) -> DeadLetter:
    """The dead letter of an input that failed with `code`; `failed_at` is unix seconds."""
    text, encoding = (None, "utf-8") if payload is None else encode_bytes(payload)
    return DeadLetter(
        error=DeadLetterError(code=code, message=message),
        source=source,
        payload=text,
        payload_encoding=encoding,
        failed_at=failed_at,
    )
