"""`immutable`: a record class checked as frozen by the type checker and built at a plain class's speed."""

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def immutable(cls: type[T]) -> type[T]:
    """A slotted dataclass that mypy treats as frozen: assigning a field is a type error.

    At run time it is not frozen: a frozen dataclass sets each field through `object.__setattr__`, and the core
    builds several records per event (measured: 1.7 µs against 0.27 µs for a state of eight fields, and 4.2 µs
    against 1.7 µs for a `replace`). mypy runs on the package in CI, so nothing assigns a field.
    """
    return dataclass(slots=True)(cls)
