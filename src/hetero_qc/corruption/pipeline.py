"""A random corruption pipeline: artefacts applied in order, each to a random subset of the batch.

Built from ``conf/corruption/*.yaml`` by Hydra. Each sample is left clean with probability
``p_clean``; otherwise each step corrupts it with its own probability. Only the selected samples go
through a step, so rare artefacts cost nothing for the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    check_batch,
    check_probability,
    check_spacing,
    uniform,
)


class PipelineResult(NamedTuple):
    """Corrupted batch ``(B, 1, D, H, W)``; per step, which samples it hit ``(B,)`` and their params."""

    image: Tensor
    applied: dict[str, Tensor]
    params: dict[str, Params]


class CorruptionPipeline:
    """Random composition of artefacts.

    Args:
        steps: ordered mapping from a step name to ``{"artefact": RandomArtefact, "p": float}``.
        p_clean: probability that a sample is left clean, whatever the steps.

    Raises:
        ValueError: for a probability outside [0, 1] or a step that is not an artefact.
    """

    def __init__(self, steps: Mapping[str, Mapping[str, Any]], p_clean: float = 0.0) -> None:
        self.p_clean = check_probability(p_clean, "p_clean")
        self.steps: dict[str, tuple[RandomArtefact, float]] = {}
        for name, step in steps.items():
            artefact = step.get("artefact")
            if not isinstance(artefact, RandomArtefact):
                raise ValueError(f"step {name!r} needs an 'artefact' (a RandomArtefact), got {artefact!r}")
            self.steps[name] = (artefact, check_probability(step.get("p", 1.0), f"steps.{name}.p"))

    def __call__(
        self,
        images: Tensor,
        spacing: Spacing = (1.0, 1.0, 1.0),
        generator: torch.Generator | None = None,
        mask: Tensor | None = None,
    ) -> PipelineResult:
        """Corrupt ``images`` ``(B, 1, D, H, W)``; ``mask`` is passed to region-bound artefacts."""
        check_batch(images)
        spacing = check_spacing(spacing)
        batch = images.shape[0]
        corruptible = uniform((0.0, 1.0), (batch,), images, generator) >= self.p_clean
        out = images
        applied: dict[str, Tensor] = {}
        params: dict[str, Params] = {}
        for name, (artefact, p) in self.steps.items():
            hit = corruptible & (uniform((0.0, 1.0), (batch,), images, generator) < p)
            applied[name] = hit
            index = torch.nonzero(hit).flatten()
            if len(index) == 0:
                continue
            if len(index) == batch:  # every sample: no gather and scatter copies
                out, params[name] = artefact(out, spacing, generator, mask)
                continue
            subset_mask = None if mask is None else mask[index]
            corrupted, params[name] = artefact(out[index], spacing, generator, subset_mask)
            out = out.index_copy(0, index, corrupted)
        return PipelineResult(out, applied, params)

    def __repr__(self) -> str:
        steps = ", ".join(f"{n}: p={p} {a!r}" for n, (a, p) in self.steps.items())
        return f"CorruptionPipeline(p_clean={self.p_clean}, steps={{{steps}}})"
