"""Evaluation metrics, computed per volume, and their logging keys (defined once, ``stage/name``)."""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import Tensor
from torchmetrics.functional import spearman_corrcoef
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)


class Metric(StrEnum):
    """Metric names; log them as ``f"{stage}/{Metric.X}"``."""

    LOSS = "loss"
    NLL = "nll"
    PSNR_INPUT = "psnr_input"
    PSNR_RECON = "psnr_recon"
    SSIM_RECON = "ssim_recon"
    SPEARMAN = "spearman_sigma_abs_error"
    MAX_ERROR = "max_abs_error"  # worst voxel over the head: catches a network that "gives up" on voxels
    MAX_ERROR_INPUT = "max_abs_error_input"  # the corruption's worst voxel, for comparison
    DICE_CGM = "dice_cgm"


def key(stage: str, metric: Metric) -> str:
    return f"{stage}/{metric.value}"


def psnr(image: Tensor, clean: Tensor) -> Tensor:
    """PSNR (dB) of ``image`` against ``clean``, intensities in [0, 1]."""
    return peak_signal_noise_ratio(image.float().clamp(0, 1), clean.float(), data_range=1.0)


def ssim(image: Tensor, clean: Tensor) -> Tensor:
    """3D SSIM of ``image`` against ``clean`` ``(B, 1, D, H, W)``, intensities in [0, 1]."""
    return structural_similarity_index_measure(image.float().clamp(0, 1), clean.float(), data_range=1.0)


def sigma_error_spearman(sigma: Tensor, error: Tensor, mask: Tensor, max_voxels: int = 200_000) -> Tensor:
    """Spearman correlation between sigma and |error| over ``mask`` (an even subsample beyond
    ``max_voxels``, to keep the rank sort cheap)."""
    s, e = sigma[mask].float(), error[mask].abs().float()
    step = max(1, s.numel() // max_voxels)
    return spearman_corrcoef(s[::step], e[::step])


def dice(prediction: Tensor, target: Tensor) -> Tensor:
    """Dice overlap of two boolean volumes (1 when both are empty)."""
    p, t = prediction.bool(), target.bool()
    denominator = p.sum() + t.sum()
    if denominator == 0:
        return torch.tensor(1.0)
    return 2 * (p & t).sum().float() / denominator.float()


def worst_voxel_errors(mean: Tensor, corrupted: Tensor, clean: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Largest |error| over ``mask`` of the reconstruction and of its corrupted input.

    A network that "gives up" on voxels (huge error under a huge sigma, the pathology of a loosely
    bounded log-variance) shows a reconstruction error far beyond the corruption's own worst voxel.
    """
    return (mean - clean)[mask].abs().max(), (corrupted - clean)[mask].abs().max()
