"""Ghosting: periodic k-space modulation along the phase-encode axis, as TorchIO's ``Ghosting``.

Periodic motion (pulsatile flow, breathing) modulates every n-th k-space plane along the phase-encode
axis; the image then holds n faint shifted copies ("ghosts"). TorchIO scales every ``num_ghosts``-th
plane of the centred spectrum by ``1 - intensity`` and restores the central planes. Because that
modulation depends on one k-space axis only, the 3D FFT collapses to a real 1D FFT along that axis
(:func:`~hetero_qc.corruption.kspace.mix_lines`): the same image for a fraction of the work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    check_axis,
    parse_range,
    randint,
    uniform,
)
from hetero_qc.corruption.kspace import mix_lines


@dataclass(frozen=True)
class GhostingParams(Params):
    """Per-sample ghosting: number of ghosts, axis (0, 1, 2), intensity in [0, 1], and the fraction
    of central planes restored (0 restores the central plane only, as TorchIO's ``restore=None``)."""

    num_ghosts: Tensor  # (B,), int64
    axis: Tensor  # (B,), int64
    intensity: Tensor  # (B,)
    restore: Tensor  # (B,)


def _plane_weights(params: GhostingParams, index: Tensor, n: int) -> Tensor:
    """k-space weight of each plane along an axis of length ``n``, unshifted order: ``(b, n)``."""
    position = torch.arange(n, device=index.device)
    modulated = (position[None, :] % params.num_ghosts[index, None]) == 0
    weights = torch.where(modulated, 1 - params.intensity[index, None], torch.ones_like(modulated,
                          dtype=params.intensity.dtype))
    size = torch.round(params.restore[index] * n).long()
    half = torch.div(size, 2, rounding_mode="floor")
    mid = n // 2
    centre_only = params.restore[index] <= 0
    low = torch.where(centre_only, torch.full_like(half, mid), mid - half)
    high = torch.where(centre_only, torch.full_like(half, mid + 1), mid + half)
    restored = (position[None, :] >= low[:, None]) & (position[None, :] < high[:, None])
    weights = torch.where(restored, torch.ones_like(weights), weights)
    return torch.fft.ifftshift(weights, dim=-1)


def ghosting(images: Tensor, params: GhostingParams) -> Tensor:
    """Add ghosts with ``params`` to ``images`` ``(B, 1, D, H, W)``; the real part is kept, as TorchIO."""
    out = images.clone()
    for axis in params.axis.unique().tolist():
        index = torch.nonzero(params.axis == axis).flatten()
        weights = _plane_weights(params, index, images.shape[2 + int(axis)])[:, None]  # (b, 1, n)
        out[index] = mix_lines([images[index]], weights.to(images.dtype), int(axis))
    return out


class RandomGhosting(RandomArtefact):
    """Ghosting with TorchIO's ranges: ``num_ghosts`` in (4, 10), an axis among ``axes``, intensity
    in (0.5, 1) of the modulated planes removed.

    Args:
        num_ghosts: number of ghosts, ``(low, high)`` integers >= 1, or one value.
        axes: phase-encode axes to draw from (0, 1, 2).
        intensity: strength, ``(low, high)`` in [0, 1]; 0 gives no ghosts.
        restore: fraction of central k-space planes restored, in [0, 1); 0 restores the centre plane.

    Raises:
        ValueError: naming the argument that is out of range.
    """

    name = "ghosting"

    def __init__(
        self,
        num_ghosts: int | tuple[int, int] = (4, 10),
        axes: tuple[int, ...] = (0, 1, 2),
        intensity: float | tuple[float, float] = (0.5, 1.0),
        restore: float = 0.0,
    ) -> None:
        low, high = parse_range(num_ghosts, "num_ghosts", min_value=1)
        self.num_ghosts = (int(low), int(high))
        if not axes:
            raise ValueError("axes must name at least one spatial axis")
        self.axes = tuple(check_axis(a, "axes") for a in axes)
        self.intensity = parse_range(intensity, "intensity", min_value=0.0, max_value=1.0)
        self.restore = parse_range(restore, "restore", min_value=0.0, max_value=0.999)[0]

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> GhostingParams:
        batch = images.shape[0]
        choice = randint((0, len(self.axes) - 1), (batch,), images, generator)
        axes = torch.tensor(self.axes, device=images.device)[choice]
        return GhostingParams(
            num_ghosts=randint(self.num_ghosts, (batch,), images, generator),
            axis=axes,
            intensity=uniform(self.intensity, (batch,), images, generator),
            restore=torch.full((batch,), self.restore, device=images.device),
        )

    def apply(
        self,
        images: Tensor,
        params: GhostingParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        return ghosting(images, params)
