"""Deterministic transaction ids (spec §4)."""

import hashlib

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAIRS = [low + high for high in _ALPHABET for low in _ALPHABET]
"""Two base-62 digits, the lower first, by their value (low + 62 × high)."""
_DIGITS = 62**24
"""The 24 lowest base-62 digits are the id's."""


def transaction_id(event_id: str, leg_index: int) -> str:
    """`cbtxn_` + 24 base-62 digits of SHA-256("<event id>:<leg index>"), the lowest digit first."""
    n = int.from_bytes(hashlib.sha256(f"{event_id}:{leg_index}".encode()).digest(), "big") % _DIGITS
    pairs = []
    for _ in range(12):
        n, r = divmod(n, 3844)
        pairs.append(_PAIRS[r])
    return "cbtxn_" + "".join(pairs)
