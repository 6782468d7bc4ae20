"""Fixtures shared by every tier: the spec's paths."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder beside the repository (spec, examples, Stripe fixtures)."""
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED} is missing: the spec lives beside the repository")
    return SHARED
