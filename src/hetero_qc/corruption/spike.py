"""Spikes (herringbone artefact): bright points in k-space, as TorchIO's ``Spike``.

A spike of amplitude ``A`` at signed frequency ``u`` adds ``(A / N) * cos(2 pi u . x / N)`` to the
image (real part of its inverse FFT, as TorchIO keeps), with ``N`` the number of voxels. TorchIO
sets ``A = intensity * max |spectrum|``; for a non-negative (magnitude) image that maximum is the
DC term, the image sum, which we use directly. So no FFT is needed: each spike is a separable
plane wave, evaluated as a sum of three 1D phases and one cosine over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    expand_to,
    parse_range,
    randint,
    uniform,
)
from hetero_qc.corruption.kspace import centred_frequencies


@dataclass(frozen=True)
class SpikeParams(Params):
    """Per-sample spikes: positions as fractions of the centred spectrum ``(B, S, 3)`` in [0, 1)
    (TorchIO's ``spikes_positions``), intensity relative to the spectrum maximum ``(B,)``, and which
    of the ``S`` slots hold a spike ``(B, S)`` (samples may have different numbers of spikes)."""

    positions: Tensor
    intensity: Tensor
    active: Tensor


def spike(images: Tensor, params: SpikeParams) -> Tensor:
    """Add the spikes of ``params`` to ``images`` ``(B, 1, D, H, W)``."""
    shape = images.shape[-3:]
    n_voxels = math.prod(shape)
    amplitude = params.intensity * images.sum(dim=(1, 2, 3, 4)).abs() / n_voxels  # (B,)
    out = images.clone()
    for s in range(params.positions.shape[1]):
        phase = None
        for axis, n in enumerate(shape):
            index = torch.floor(params.positions[:, s, axis] * n).long().clamp(0, n - 1)
            frequency = centred_frequencies(n, images.device)[index].to(images.dtype)  # (B,)
            coordinate = torch.arange(n, device=images.device, dtype=images.dtype)
            axis_phase = 2 * math.pi * frequency[:, None] * coordinate[None, :] / n  # (B, n)
            view = [len(frequency), 1, 1, 1]
            view[1 + axis] = n
            axis_phase = axis_phase.reshape(view)
            phase = axis_phase if phase is None else phase + axis_phase
        weight = amplitude * params.active[:, s].to(images.dtype)
        out += expand_to(weight, images) * torch.cos(phase).unsqueeze(1)
    return out


class RandomSpike(RandomArtefact):
    """Spikes at uniform random k-space positions, TorchIO's defaults: one spike, intensity (1, 3).

    Args:
        num_spikes: number of spikes, ``(low, high)`` integers >= 0, or one value.
        intensity: spike amplitude relative to the spectrum maximum, ``(low, high)`` or one value
            ``r`` meaning ``(r, r)``; may be negative, as TorchIO allows.

    Raises:
        ValueError: naming the argument that is out of range.
    """

    name = "spike"

    def __init__(
        self,
        num_spikes: int | tuple[int, int] = 1,
        intensity: float | tuple[float, float] = (1.0, 3.0),
    ) -> None:
        low, high = parse_range(num_spikes, "num_spikes", min_value=0)
        self.num_spikes = (int(low), int(high))
        self.intensity = parse_range(intensity, "intensity")

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> SpikeParams:
        batch, slots = images.shape[0], max(self.num_spikes[1], 1)
        count = randint(self.num_spikes, (batch,), images, generator)
        active = torch.arange(slots, device=images.device)[None, :] < count[:, None]
        return SpikeParams(
            positions=uniform((0.0, 1.0), (batch, slots, 3), images, generator),
            intensity=uniform(self.intensity, (batch,), images, generator),
            active=active,
        )

    def apply(
        self,
        images: Tensor,
        params: SpikeParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        return spike(images, params)
