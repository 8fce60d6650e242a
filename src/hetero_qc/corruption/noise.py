"""Rician noise at a target SNR in dB, over the whole image or confined to a region (partial noise).

Magnitude MR images carry Rician noise: the complex signal gets independent Gaussian noise of
standard deviation sigma in its real and imaginary channels, and the magnitude is kept,
``|x + sigma * (n1 + i n2)|``. Here

    SNR (dB) = 20 * log10(mean foreground signal / sigma),

where the foreground of a sample is its voxels brighter than the sample's mean intensity (a
label-free head foreground for T1-weighted scans). ``E[|y|^2] = x^2 + 2 sigma^2`` holds at every
SNR, which is how the tests measure the SNR achieved. Partial noise is the paper's Fig 7-8
corruption: the same noise, but only inside a region (a box, or outside a mask such as the brain),
so that visual quality drops while the task region may stay intact.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    parse_range,
    randint,
    spatial_dims,
    uniform,
)

SEED_HIGH = 2**62


@dataclass(frozen=True)
class NoiseParams(Params):
    """Rician noise of one sample: target SNR (dB), the sigma it gives, and the noise seed.

    ``box`` holds the noisy region as fractions of the field of view, ``(lo_d, lo_h, lo_w, hi_d,
    hi_h, hi_w)``; the whole image is ``(0, 0, 0, 1, 1, 1)``.
    """

    snr_db: Tensor  # (B,)
    sigma: Tensor  # (B,), image intensity units
    seed: Tensor  # (B,), int64
    box: Tensor  # (B, 6)


def foreground_mean(images: Tensor) -> Tensor:
    """Mean intensity of each sample's foreground (voxels above the sample's mean): ``(B,)``."""
    dims = spatial_dims(images)
    flat_mean = images.mean(dim=(1, *dims), keepdim=True)
    foreground = images > flat_mean
    total = (images * foreground).sum(dim=(1, *dims))
    count = foreground.sum(dim=(1, *dims)).clamp_min(1)
    return total / count


def sigma_for_snr(images: Tensor, snr_db: Tensor) -> Tensor:
    """Noise sigma ``(B,)`` that gives each sample of ``images`` its target ``snr_db`` ``(B,)``."""
    return foreground_mean(images) / torch.pow(10.0, snr_db.to(images.dtype) / 20.0)


def box_mask(box: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Boolean ``(B, 1, D, H, W)`` mask of the boxes ``(B, 6)`` given as fractions of the grid."""
    axes = []
    for axis, n in enumerate(shape):
        position = (torch.arange(n, device=box.device, dtype=box.dtype) + 0.5) / n  # voxel centres
        inside = (position >= box[:, axis, None]) & (position < box[:, axis + 3, None])  # (B, n)
        axes.append(inside)
    d, h, w = axes
    return (d[:, :, None, None] & h[:, None, :, None] & w[:, None, None, :]).unsqueeze(1)


# Samples per random stream on the CPU: fixed, so that the noise does not depend on the thread count.
CHUNK = 1 << 19
_POOL = ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8), thread_name_prefix="hetero_qc-noise")


def _fill_normal(out: np.ndarray, seed: np.random.SeedSequence) -> None:
    np.random.Generator(np.random.PCG64(seed)).standard_normal(out=out, dtype=out.dtype)


def gaussian_pair(shape: tuple[int, ...], seed: int, device: torch.device) -> Tensor:
    """Two independent standard-normal fields for one sample, ``(2, *shape)`` float32, seeded by ``seed``.

    On a GPU: torch's sampler. On the CPU, numpy's ziggurat sampler (PCG64), which ``make bench``
    measured about twice as fast as torch's Box-Muller ``randn``: the fields are cut into chunks of
    :data:`CHUNK` samples, each with its own stream spawned from ``seed``, filled in parallel threads
    (numpy releases the GIL while it fills), so the result does not depend on the thread count.
    """
    if device.type != "cpu":
        generator = torch.Generator(device=device).manual_seed(seed % 2**63)
        return torch.randn((2, *shape), generator=generator, device=device)
    fields = torch.empty((2, *shape), dtype=torch.float32)
    flat = fields.numpy().reshape(-1)
    starts = range(0, flat.size, CHUNK)
    streams = np.random.SeedSequence(seed).spawn(len(starts))
    jobs = [_POOL.submit(_fill_normal, flat[a:a + CHUNK], s) for a, s in zip(starts, streams)]
    for job in jobs:
        job.result()
    return fields


FULL_BOX = (0.0, 0.0, 0.0, 1.0, 1.0, 1.0)


def rician_noise(images: Tensor, params: NoiseParams, region: Tensor | None = None) -> Tensor:
    """Add Rician noise with ``params`` to ``images`` ``(B, 1, D, H, W)``; deterministic given the seeds.

    Args:
        images: clean magnitude images, ``(B, 1, D, H, W)``.
        params: per-sample sigma, seed and box (see :class:`NoiseParams`).
        region: optional boolean ``(B, 1, D, H, W)`` further limiting where noise goes.

    Returns:
        The noisy batch, same shape and dtype; voxels outside the region are unchanged.
    """
    noisy = torch.empty_like(images)
    for b, (seed, sigma) in enumerate(zip(params.seed.tolist(), params.sigma.tolist())):
        real, imaginary = gaussian_pair(tuple(images.shape[1:]), int(seed), images.device).to(images.dtype)
        noisy[b] = torch.hypot(real.mul_(sigma).add_(images[b]), imaginary.mul_(sigma))
    full_box = bool((params.box == params.box.new_tensor(FULL_BOX)).all())
    if full_box and region is None:
        return noisy
    inside = box_mask(params.box.to(images.dtype), tuple(images.shape[-3:]))
    if region is not None:
        inside = inside & region
    return torch.where(inside, noisy, images)


class RandomRicianNoise(RandomArtefact):
    """Rician noise over the whole image at an SNR drawn uniformly in ``snr_db`` (dB).

    Args:
        snr_db: SNR in dB, ``(low, high)`` or one value; lower is noisier (the paper spans +10 to -10).

    Raises:
        ValueError: if ``snr_db`` is not a finite number or range.
    """

    name = "noise"

    def __init__(self, snr_db: float | tuple[float, float] = (-10.0, 10.0)) -> None:
        self.snr_db = parse_range(snr_db, "snr_db")

    def _draw(self, images: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        batch = images.shape[0]
        snr = uniform(self.snr_db, (batch,), images, generator)
        seed = randint((0, SEED_HIGH), (batch,), images, generator)
        return snr, sigma_for_snr(images, snr), seed

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> NoiseParams:
        snr, sigma, seed = self._draw(images, generator)
        box = torch.tensor(FULL_BOX, device=images.device).repeat(len(snr), 1)
        return NoiseParams(snr_db=snr, sigma=sigma, seed=seed, box=box)

    def apply(
        self,
        images: Tensor,
        params: NoiseParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        return rician_noise(images, params)


class RandomPartialNoise(RandomRicianNoise):
    """Rician noise confined to a region: a random box, or everything outside a mask.

    Args:
        snr_db: SNR in dB of the noise inside the region (defined on the whole image's foreground,
            so that it matches :class:`RandomRicianNoise` at the same value).
        region: ``"box"``: an axis-aligned box whose side along each axis is a fraction of the field
            of view drawn in ``box_size``, placed uniformly; ``"outside_mask"``: every voxel outside
            the mask passed at call time (for example the brain mask: noise on skull and scalp only).
        box_size: side of the box as a fraction of the field of view, ``(low, high)`` in ``(0, 1]``.

    Raises:
        ValueError: for an unknown ``region`` or a ``box_size`` outside ``(0, 1]``; at call time, if
            ``region="outside_mask"`` and no mask is given.
    """

    name = "partial_noise"

    def __init__(
        self,
        snr_db: float | tuple[float, float] = (-10.0, 0.0),
        region: Literal["box", "outside_mask"] = "box",
        box_size: float | tuple[float, float] = (0.3, 0.6),
    ) -> None:
        super().__init__(snr_db)
        if region not in ("box", "outside_mask"):
            raise ValueError(f"region must be 'box' or 'outside_mask', got {region!r}")
        self.region = region
        self.box_size = parse_range(box_size, "box_size", min_value=1e-3, max_value=1.0)

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> NoiseParams:
        snr, sigma, seed = self._draw(images, generator)
        batch = len(snr)
        if self.region == "box":
            size = uniform(self.box_size, (batch, 3), images, generator)
            low = uniform((0.0, 1.0), (batch, 3), images, generator) * (1 - size)
            box = torch.cat([low, low + size], dim=1)
        else:
            box = torch.tensor(FULL_BOX, device=images.device).repeat(batch, 1)
        return NoiseParams(snr_db=snr, sigma=sigma, seed=seed, box=box)

    def apply(
        self,
        images: Tensor,
        params: NoiseParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        if self.region == "outside_mask":
            if mask is None:
                raise ValueError("mask is required for partial noise with region='outside_mask'")
            return rician_noise(images, params, region=~mask.bool())
        return rician_noise(images, params)
