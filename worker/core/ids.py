"""Deterministic transaction ids (spec §4)."""

import hashlib

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def transaction_id(event_id: str, leg_index: int) -> str:
    """`cbtxn_` + 24 base-62 digits of SHA-256("<event id>:<leg index>")."""
    n = int.from_bytes(hashlib.sha256(f"{event_id}:{leg_index}".encode()).digest(), "big")
    digits = []
    for _ in range(24):
        n, r = divmod(n, 62)
        digits.append(_ALPHABET[r])
    return "cbtxn_" + "".join(digits)
