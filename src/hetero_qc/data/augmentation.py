"""Appearance augmentation of clean training scans, so that a model trained on one site meets others.

Scanners and sites differ in contrast, in slice thickness, in field of view, and in whether the
scans arrive skull-stripped. Each training scan is given such a look before the (on-device) artefact
corruption, so the network learns to score artefacts rather than a site's appearance. Contrast and
resolution are TorchIO's transforms; skull stripping and field-of-view cuts act on the masks too.
Every draw uses torch's global generator, which DataLoader seeds per worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
import torchio as tio
from torch import Tensor

from hetero_qc.checks import check_probability, parse_range
from hetero_qc.data.preprocess import Scan

VOLUMES = ("image", "head", "brain", "cgm")


def _coin(p: float) -> bool:
    """True with probability ``p``, from torch's global generator; ``p = 0`` draws nothing."""
    return p > 0 and float(torch.rand(())) < p


def skull_strip(scan: Scan) -> Scan:
    """The scan as a skull-stripped site delivers it: image outside the brain set to 0, head = brain.

    A scan without a brain mask (``brain`` all False: no labels) is returned as it is.
    """
    if not bool(scan.brain.any()):
        return scan
    return scan._replace(image=scan.image * scan.brain, head=scan.brain)


def crop_fov(scan: Scan, axis: int, before: int, after: int) -> Scan:
    """The scan with a smaller field of view: the first ``before`` and the last ``after`` slices
    along spatial ``axis`` (0, 1 or 2 of ``(1, D, H, W)``) set to air in the image and every mask.

    The shape is kept: preprocessing pads a scan that ends early with zeros, as this does.

    Raises:
        ValueError: for an axis other than 0, 1, 2, or slabs that are negative or leave no slice.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be a spatial axis 0, 1 or 2, got {axis}")
    side = scan.image.shape[1 + axis]
    if min(before, after) < 0 or before + after >= side:
        raise ValueError(f"before and after must be >= 0 and leave some of the {side} slices, got {before}, {after}")
    keep = torch.ones(side, dtype=torch.bool)
    keep[:before] = False
    keep[side - after:] = False
    keep = keep.view([-1 if a == axis else 1 for a in range(3)])  # broadcast over the other axes
    return scan._replace(**{name: getattr(scan, name) * keep for name in VOLUMES})


@dataclass(frozen=True)
class Augmentation:
    """Random site appearance for a training :class:`Scan` (volumes ``(1, D, H, W)``).

    Applied in acquisition order: contrast, then slice thickness, then field of view (hard edges:
    the data end there), then skull stripping (post-processing, last). Each step applies with its
    own probability (a coin from torch's global generator); all are off by default. The input is
    never modified (the scans are a cache that every epoch shares); volumes a call leaves alone are
    the input's own tensors, not copies.

    Args:
        gamma_p: probability of a contrast change ``image ** exp(beta)`` (``tio.RandomGamma``).
        log_gamma: range of ``beta ~ U(a, b)``; one number ``d`` means ``(-d, d)``.
        anisotropy_p: probability of a thick-slice look (``tio.RandomAnisotropy``: nearest
            downsampling along one random axis, linear upsampling back to the same grid; Billot
            et al., MICCAI 2020).
        downsampling: range of the downsampling factor, ``>= 1``.
        skull_strip_p: probability of :func:`skull_strip` (scans with a brain mask only).
        fov_crop_p: probability of :func:`crop_fov` at one or both ends of one random axis.
        fov_max_fraction: largest slab cut at one end, as a fraction of that side, in ``(0, 0.5)``.

    Raises:
        ValueError: naming the argument, for a probability outside [0, 1], a reversed or
            non-finite range, a downsampling below 1, or a fraction outside (0, 0.5).
    """

    gamma_p: float = 0.0
    log_gamma: tuple[float, float] = (-0.3, 0.3)
    anisotropy_p: float = 0.0
    downsampling: tuple[float, float] = (1.5, 3.0)
    skull_strip_p: float = 0.0
    fov_crop_p: float = 0.0
    fov_max_fraction: float = 0.25
    # The TorchIO steps (their coins are ours), built once so that TorchIO checks them up front too.
    _gamma: tio.RandomGamma = field(init=False, repr=False, compare=False)
    _anisotropy: tio.RandomAnisotropy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("gamma_p", "anisotropy_p", "skull_strip_p", "fov_crop_p"):
            object.__setattr__(self, name, check_probability(getattr(self, name), name))
        object.__setattr__(self, "log_gamma", parse_range(self.log_gamma, "log_gamma", symmetric=True))
        object.__setattr__(self, "downsampling", parse_range(self.downsampling, "downsampling", min_value=1.0))
        if not 0.0 < float(self.fov_max_fraction) < 0.5:
            raise ValueError(f"fov_max_fraction must lie in (0, 0.5), got {self.fov_max_fraction}")
        object.__setattr__(self, "fov_max_fraction", float(self.fov_max_fraction))
        # No copies inside TorchIO: it only ever sees a tensor made for the call (see _torchio).
        object.__setattr__(self, "_gamma", tio.RandomGamma(log_gamma=self.log_gamma, copy=False))
        object.__setattr__(self, "_anisotropy", tio.RandomAnisotropy(
            axes=(0, 1, 2), downsampling=self.downsampling, image_interpolation="linear", copy=False))

    def __call__(self, scan: Scan) -> Scan:
        """A randomly augmented copy of ``scan``: same shapes, dtypes, spacing and affine; the
        image float32 in [0, 1], the masks still aligned with it."""
        gamma, thick = _coin(self.gamma_p), _coin(self.anisotropy_p)
        out = scan
        if gamma or thick:
            # The image alone goes through TorchIO: gamma and slice thickness change how the scan
            # looks, not where the head, brain and cortex are (the targets stay high-resolution).
            out = out._replace(image=self._torchio(scan.image, np.asarray(scan.affine, dtype=float), gamma, thick))
        if _coin(self.fov_crop_p):
            out = self._random_fov_crop(out)
        if _coin(self.skull_strip_p):
            out = skull_strip(out)
        return out

    def _torchio(self, image: Tensor, affine: np.ndarray, gamma: bool, thick: bool) -> Tensor:
        """RandomGamma and/or RandomAnisotropy on ``image`` ``(1, D, H, W)``: a new float32 tensor
        in [0, 1] on the same grid."""
        if thick:
            # SimpleITK, which RandomAnisotropy resamples with, writes 0 where a voxel lies beyond
            # the downsampled grid: for about half the factors a black first and last slice along
            # the axis, which no acquisition has. A replicated margin of half a thick slice takes
            # those zeros and is cut off afterwards.
            margin = math.ceil(self.downsampling[1] / 2)
            image = F.pad(image[None], [margin] * 6, mode="replicate")[0]  # a new tensor
            affine = affine.copy()
            affine[:3, 3] -= affine[:3, :3] @ np.full(3, float(margin))  # same world positions
        else:
            margin, image = 0, image.clone()  # TorchIO works on the call's own tensor, not the cache's
        subject = tio.Subject(image=tio.ScalarImage(tensor=image, affine=affine))
        for step in (self._gamma,) * gamma + (self._anisotropy,) * thick:
            subject = step(subject)
        out = subject["image"].data
        if margin:
            out = out[:, margin:-margin, margin:-margin, margin:-margin]
        # Keep the contract whatever the interpolation did: float32 in [0, 1] (a new tensor).
        return out.float().clamp(0.0, 1.0)

    def _random_fov_crop(self, scan: Scan) -> Scan:
        """:func:`crop_fov` along a random axis at its low end, its high end or both, each slab
        ``1..floor(fov_max_fraction * side)`` slices thick; a side too short for one slice is kept."""
        axis = int(torch.randint(3, ()))
        widest = int(self.fov_max_fraction * scan.image.shape[1 + axis])
        ends = int(torch.randint(3, ()))  # 0: low end, 1: high end, 2: both
        if widest < 1:
            return scan
        before = int(torch.randint(1, widest + 1, ())) if ends in (0, 2) else 0
        after = int(torch.randint(1, widest + 1, ())) if ends in (1, 2) else 0
        return crop_fov(scan, axis, before, after)
