"""Shared mechanics of the batched artefacts: parameter containers, argument checks and random draws.

Every artefact follows TorchIO's split between a random transform and its deterministic twin:
``RandomX.sample`` draws one set of parameters per sample (a :class:`Params` whose tensors lead
with the batch dimension ``B``), and ``RandomX.apply`` (the deterministic form, also exposed as a
plain function in each module) corrupts a batch ``(B, 1, D, H, W)`` with given parameters. Calling
a random artefact does both and returns the parameters it used, so any draw can be replayed and
graded by severity.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import ClassVar, NamedTuple, Self

import torch
from torch import Tensor

from hetero_qc.checks import check_probability, parse_range  # noqa: F401 (the artefacts' argument checks)

Spacing = tuple[float, float, float]


@dataclass(frozen=True)
class Params:
    """Per-sample artefact parameters: every field is a tensor whose first dimension is the batch."""

    def to(self, device: torch.device | str) -> Self:
        """Move every field to ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, index: Tensor) -> Self:
        """Keep the samples at ``index`` (a 1D long tensor)."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def as_dict(self) -> dict[str, list]:
        """JSON-ready nested lists, one entry per sample."""
        return {f.name: getattr(self, f.name).detach().cpu().tolist() for f in fields(self)}


class Corrupted(NamedTuple):
    """What a random artefact returns: the corrupted batch and the parameters drawn for it."""

    image: Tensor  # (B, 1, D, H, W)
    params: Params


class RandomArtefact(ABC):
    """A random artefact: draws per-sample parameters, then applies its deterministic twin."""

    name: ClassVar[str]

    @abstractmethod
    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> Params:
        """Draw one parameter set per sample of ``images`` ``(B, 1, D, H, W)``, on their device."""

    @abstractmethod
    def apply(
        self,
        images: Tensor,
        params: Params,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        """Corrupt ``images`` ``(B, 1, D, H, W)`` with ``params``; the deterministic form.

        ``spacing`` is the voxel size in mm; ``mask`` ``(B, 1, D, H, W)`` is a region that artefacts
        confined to one (partial noise) may use, and the others ignore.
        """

    def __call__(
        self,
        images: Tensor,
        spacing: Spacing = (1.0, 1.0, 1.0),
        generator: torch.Generator | None = None,
        mask: Tensor | None = None,
    ) -> Corrupted:
        """Draw parameters and corrupt ``images``; ``generator`` must live on the images' device."""
        check_batch(images)
        params = self.sample(images, generator)
        return Corrupted(self.apply(images, params, check_spacing(spacing), mask), params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


# --- argument checks: they run at construction and name the argument, as TorchIO's do -------------


def check_axis(axis: int, name: str = "axis") -> int:
    """Return a spatial axis as 0, 1 or 2 (``-1`` means 2); else raise ``ValueError`` naming it."""
    if axis not in (-3, -2, -1, 0, 1, 2):
        raise ValueError(f"{name} must be a spatial axis in 0, 1, 2 (or -3..-1), got {axis}")
    return axis % 3


def check_batch(images: Tensor) -> None:
    """Raise ``ValueError`` unless ``images`` is a floating ``(B, 1, D, H, W)`` tensor."""
    if not isinstance(images, Tensor) or images.ndim != 5 or images.shape[1] != 1:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (B, 1, D, H, W), got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point, got {images.dtype}")


def check_spacing(spacing: Sequence[float]) -> Spacing:
    """Return the voxel size in mm as three positive floats; else raise ``ValueError``."""
    values = tuple(float(s) for s in spacing)
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be three positive voxel sizes in mm, got {spacing!r}")
    return values  # type: ignore[return-value]


# --- random draws on the images' device -------------------------------------------------------


def uniform(
    bounds: tuple[float, float],
    shape: Sequence[int],
    like: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """Uniform draws in ``[low, high)`` of ``shape``, on ``like``'s device, in float32."""
    low, high = bounds
    draws = torch.rand(tuple(shape), generator=generator, device=like.device, dtype=torch.float32)
    return low + (high - low) * draws


def randint(
    bounds: tuple[int, int], shape: Sequence[int], like: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Integer draws in ``[low, high]`` (both included) of ``shape``, on ``like``'s device."""
    low, high = bounds
    return torch.randint(int(low), int(high) + 1, tuple(shape), generator=generator, device=like.device)


def expand_to(values: Tensor, images: Tensor) -> Tensor:
    """Reshape per-sample ``values`` ``(B,)`` to broadcast against ``images`` ``(B, 1, D, H, W)``."""
    return values.reshape(-1, *([1] * (images.ndim - 1))).to(images.dtype)
