"""Supported currencies and their chargeable bounds, in minor units (spec §1)."""

from collections.abc import Mapping
from types import MappingProxyType

MINIMUM_CHARGE: Mapping[str, int] = MappingProxyType(
    {
        "usd": 50,
        "eur": 50,
        "cad": 50,
        "aud": 50,
        "chf": 50,
        "nzd": 50,
        "sgd": 50,
        "gbp": 30,
        "jpy": 50,
        "hkd": 400,
        "mxn": 1000,
        "dkk": 250,
        "sek": 300,
        "nok": 300,
        "pln": 200,
        "czk": 1500,
        "huf": 17500,
    }
)
"""Stripe's minimum chargeable amount per supported currency."""

MAXIMUM_CHARGE = 99_999_999
"""Stripe's maximum chargeable amount, the same for every currency."""


def is_supported(currency: str) -> bool:
    """Whether the worker keeps ledgers in this (lowercase) currency."""
    return currency in MINIMUM_CHARGE
