"""Deterministic subject-level split into train, validation and test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hetero_qc.atomic import write_text

SPLITS = ("train", "val", "test")


def split_subjects(
    subjects: list[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[str]]:
    """Shuffle the unique subjects with ``seed`` and cut them by ``fractions`` (train, val, test).

    Validation and test get ``round(n * fraction)`` subjects each (at least one when the fraction is
    positive and there are enough subjects); train gets the rest. A subject is in one split only.

    Raises:
        ValueError: if the fractions are negative or do not sum to 1, or no subject is left for training.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    unique = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    n = len(shuffled)
    counts = [max(1, round(n * f)) if f > 0 and n >= 3 else round(n * f) for f in fractions[1:]]
    n_val, n_test = counts
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} subjects leave none for training with fractions {fractions}")
    return {
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
        "train": sorted(shuffled[n_val + n_test :]),
    }


def write_split(split: dict[str, list[str]], path: Path) -> None:
    """Write the split as JSON, atomically (a unique temporary name, so concurrent writers never clash)."""
    write_text(path, json.dumps({k: split[k] for k in SPLITS}, indent=1))
