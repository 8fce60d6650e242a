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

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    check_probability,
    parse_range,
    randint,
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


@dataclass(frozen=True)
class PartialNoiseParams(NoiseParams):
    """Partial noise of one sample: :class:`NoiseParams`, and how far (mm) the mask was grown before
    the noise filled its outside (0 for a box)."""

    margin_mm: Tensor  # (B,)


def grow_mask(mask: Tensor, margin_mm: Tensor, spacing: Spacing) -> Tensor:
    """``mask`` ``(B, 1, D, H, W)`` grown by each sample's ``margin_mm`` ``(B,)``: every voxel within that
    distance along each axis of a masked voxel (a box-shaped dilation, separable into three 1D max
    pools, cheap at any margin). MONAI's ``dilate`` takes one filter for the whole batch and
    convolves with it densely: (2r + 1)^3 operations a voxel where these pools take 3 (2r + 1)."""
    grown = mask.bool().clone()
    for b, margin in enumerate(margin_mm.tolist()):
        radii = [int(round(margin / step)) for step in spacing]
        if not any(radii):
            continue  # the mask itself: the damage evaluation's noise from the brain's edge
        sample = grown[b : b + 1].float()
        for axis, radius in enumerate(radii):
            if radius > 0:
                kernel, padding = [1, 1, 1], [0, 0, 0]
                kernel[axis], padding[axis] = 2 * radius + 1, radius
                sample = F.max_pool3d(sample, kernel, stride=1, padding=padding)
        grown[b : b + 1] = sample > 0
    return grown


def foreground_mean(images: Tensor) -> Tensor:
    """Mean intensity of each sample's foreground (voxels above the sample's mean): ``(B,)``.

    Per sample, ``F.threshold`` keeps the foreground and zeroes the rest in one pass, and
    ``count_nonzero`` counts a boolean mask: together a third of the time of a masked product and a
    boolean ``sum`` (which alone took longer than the mean). The threshold is a Python number, so on
    a GPU each sample syncs once (as :func:`rician_noise` does anyway to read its parameters).
    """
    means = []
    for sample in images:
        threshold = float(sample.mean())
        foreground = F.threshold(sample, threshold, 0.0).sum()
        means.append(foreground / torch.count_nonzero(sample > threshold).clamp_min(1))
    return torch.stack(means) if means else images.new_zeros(0)


def sigma_for_snr(images: Tensor, snr_db: Tensor) -> Tensor:
    """Noise sigma ``(B,)`` that gives each sample of ``images`` its target ``snr_db`` ``(B,)``."""
    return foreground_mean(images) / torch.pow(10.0, snr_db.to(images.dtype) / 20.0)


def box_slices(box: Tensor, shape: tuple[int, int, int]) -> list[tuple[slice, slice, slice]]:
    """Per sample, the voxel slices of its box ``(B, 6)`` (fractions of the grid): the voxels whose
    centre ``(i + 0.5) / n`` lies in ``[low, high)``."""
    n = torch.tensor(shape, dtype=torch.float64)
    bounds = torch.ceil(box.double().cpu() * n.repeat(2) - 0.5).clamp(min=0).long()
    bounds = torch.minimum(bounds, n.long().repeat(2))
    return [tuple(slice(lo, hi) for lo, hi in zip(row[:3], row[3:])) for row in bounds.tolist()]


def _rician_sample(clean: Tensor, sigma: float, seed: int, out: Tensor) -> None:
    """Write ``|clean + sigma (n1 + i n2)|`` for one sample ``(1, D, H, W)`` into ``out``; ``n1``, ``n2``
    standard normal fields from two generators seeded by ``seed``.

    Torch's CPU normal sampler runs on one core; each field has its own generator, so on the CPU the
    two fields are drawn and scaled in two threads (the GIL is released), and the result does not
    depend on the thread count. Each thread creates its own tensors (no in-place write from a thread
    that is outside the caller's inference mode). One ``hypot`` pass makes the magnitude.
    """
    generators = [torch.Generator(device=clean.device).manual_seed((seed + k) % 2**63) for k in range(2)]

    def real() -> Tensor:
        field = torch.randn(clean.shape, generator=generators[0], device=clean.device)
        return torch.add(clean, field, alpha=sigma, out=field)

    def imaginary() -> Tensor:
        return torch.randn(clean.shape, generator=generators[1], device=clean.device).mul_(sigma)

    if clean.device.type == "cpu":
        jobs = [_POOL.submit(part) for part in (real, imaginary)]
        parts = [job.result() for job in jobs]
    else:
        parts = [real(), imaginary()]
    torch.hypot(*parts, out=out)


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hetero_qc-noise")
FULL_BOX = (0.0, 0.0, 0.0, 1.0, 1.0, 1.0)


def rician_noise(images: Tensor, params: NoiseParams, region: Tensor | None = None) -> Tensor:
    """Add Rician noise with ``params`` to ``images`` ``(B, 1, D, H, W)``; deterministic given the seeds.

    Noise is drawn only inside each sample's box (TorchIO's ``RandomNoise`` draws it everywhere): a
    partial-noise box of 30-60% of each side costs 3-22% of a whole-image draw.

    Args:
        images: clean magnitude images, ``(B, 1, D, H, W)``.
        params: per-sample sigma, seed and box (see :class:`NoiseParams`).
        region: optional boolean ``(B, 1, D, H, W)`` further limiting where noise goes.

    Returns:
        The noisy batch, same shape and dtype; voxels outside the box and region are unchanged.
    """
    full_box = bool((params.box == params.box.new_tensor(FULL_BOX)).all())
    noisy = torch.empty_like(images) if full_box and region is None else images.clone()
    boxes = box_slices(params.box, tuple(images.shape[-3:]))
    for b, (seed, sigma, box) in enumerate(zip(params.seed.tolist(), params.sigma.tolist(), boxes)):
        inside = (b, slice(None), *box)
        if region is None:
            _rician_sample(images[inside], sigma, int(seed), noisy[inside])
        else:
            sample = torch.empty_like(images[inside])
            _rician_sample(images[inside], sigma, int(seed), sample)
            noisy[inside] = torch.where(region[inside], sample, images[inside])
    return noisy


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
            the mask passed at call time (for example the brain mask: noise on skull and scalp only),
            grown first by ``margin_mm``.
        margin_mm: for ``"outside_mask"``, how far (mm, drawn uniformly in the range) the mask is grown
            before the noise fills its outside: noise that starts at a distance from the brain, as a
            coil's or the neck's does. A network trained only on noise that starts at the brain's edge
            learnt that one pattern: noise 10 mm from the brain cost the shipped model's CGM Dice 0.226
            against 0.041 at the edge (-5 dB, 8 test scans, ``make reproduce-damage``). Trained on
            margins drawn in 0-20 mm alone, it learnt the other one (0.032 at 10 mm, 0.133 at the edge:
            ``multitask_margin``, ``results/damage/multitask_margin_step2500/``).
        edge_p: for ``"outside_mask"``, the probability that a sample's margin is 0 (noise from the
            mask's edge) rather than drawn in ``margin_mm``.
        box_size: side of the box as a fraction of the field of view, ``(low, high)`` in ``(0, 1]``.
        box: a fixed box instead, ``(lo_d, lo_h, lo_w, hi_d, hi_h, hi_w)`` as fractions of the field
            of view (the damage evaluation's noise over the cortex); ``box_size`` is then unused.

    Raises:
        ValueError: for an unknown ``region``, a ``box_size`` outside ``(0, 1]`` or a ``box`` that is
            not six fractions with each low below its high; at call time, if
            ``region="outside_mask"`` and no mask is given; a negative ``margin_mm``; an ``edge_p``
            outside ``[0, 1]``.
    """

    name = "partial_noise"

    def __init__(
        self,
        snr_db: float | tuple[float, float] = (-10.0, 0.0),
        region: Literal["box", "outside_mask"] = "box",
        box_size: float | tuple[float, float] = (0.3, 0.6),
        box: Sequence[float] | None = None,
        margin_mm: float | tuple[float, float] = 0.0,
        edge_p: float = 0.0,
    ) -> None:
        super().__init__(snr_db)
        self.margin_mm = parse_range(margin_mm, "margin_mm", min_value=0.0)
        self.edge_p = check_probability(edge_p, "edge_p")
        if region not in ("box", "outside_mask"):
            raise ValueError(f"region must be 'box' or 'outside_mask', got {region!r}")
        self.region = region
        self.box_size = parse_range(box_size, "box_size", min_value=1e-3, max_value=1.0)
        if box is not None:
            box = tuple(float(v) for v in box)
            if len(box) != 6 or not all(0 <= lo < hi <= 1 for lo, hi in zip(box[:3], box[3:])):
                raise ValueError(f"box must be (lo_d, lo_h, lo_w, hi_d, hi_h, hi_w) fractions with lo < hi, got {box}")
        self.box = box

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> PartialNoiseParams:
        snr, sigma, seed = self._draw(images, generator)
        batch = len(snr)
        if self.region == "box" and self.box is not None:
            box = torch.tensor(self.box, device=images.device).repeat(batch, 1)
        elif self.region == "box":
            size = uniform(self.box_size, (batch, 3), images, generator)
            low = uniform((0.0, 1.0), (batch, 3), images, generator) * (1 - size)
            box = torch.cat([low, low + size], dim=1)
        else:
            box = torch.tensor(FULL_BOX, device=images.device).repeat(batch, 1)
        outside = self.region == "outside_mask"
        # A fixed margin draws nothing: the generator's stream, and so every later artefact's draw
        # in a seeded evaluation, stays what it was before margins existed.
        low, high = self.margin_mm
        margin = uniform(self.margin_mm, (batch,), images, generator) if outside and low < high \
            else snr.new_full((batch,), low if outside else 0.0)
        if outside and self.edge_p > 0:
            margin = margin.masked_fill(uniform((0.0, 1.0), (batch,), images, generator) < self.edge_p, 0.0)
        return PartialNoiseParams(snr_db=snr, sigma=sigma, seed=seed, box=box, margin_mm=margin)

    def apply(
        self,
        images: Tensor,
        params: PartialNoiseParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        if self.region == "outside_mask":
            if mask is None:
                raise ValueError("mask is required for partial noise with region='outside_mask'")
            return rician_noise(images, params, region=~grow_mask(mask, params.margin_mm, spacing))
        return rician_noise(images, params)
