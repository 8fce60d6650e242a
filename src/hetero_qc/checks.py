"""Argument checks shared by the corruption and the data augmentation: one number or a range, a
probability. They run at construction and name the argument, as TorchIO's do."""

from __future__ import annotations

import math
from collections.abc import Sequence


def parse_range(
    value: float | Sequence[float],
    name: str,
    *,
    symmetric: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> tuple[float, float]:
    """Turn ``d`` or ``(a, b)`` into ``(a, b)``; ``d`` means ``(-d, d)`` if symmetric, else ``(d, d)``.

    Raises:
        ValueError: naming ``name`` if the value is not one or two finite numbers with ``a <= b``
            inside ``[min_value, max_value]``.
    """
    if isinstance(value, (int, float)):
        if symmetric and value < 0:
            raise ValueError(f"{name} must be non-negative when given as one number, got {value}")
        low, high = (-float(value), float(value)) if symmetric else (float(value), float(value))
    else:
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{name} must be finite with low <= high, got ({low}, {high})")
    if min_value is not None and low < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got ({low}, {high})")
    if max_value is not None and high > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got ({low}, {high})")
    return low, high


def check_probability(value: float, name: str = "p") -> float:
    """Return ``value`` if it lies in ``[0, 1]``; else raise ``ValueError`` naming it."""
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return float(value)
