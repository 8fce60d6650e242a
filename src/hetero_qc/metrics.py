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

from hetero_qc.corruption import grow_mask


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
    # AUROC of a scan score for damaged (HeteroModule's damage_check) against clean validation volumes
    AUROC_DAMAGE_SIGMA_R = "auroc_damage_sigma_r"
    AUROC_DAMAGE_SIGMA_S = "auroc_damage_sigma_s"


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


# --- scan scores: the one definition the training logs, the experiments and the QC tool share ------


def predicted_cgm(seg_logits: Tensor) -> Tensor:
    """The predicted cortex ``(B, 1, ...)`` bool from background/CGM logits ``(B, 2, ...)``."""
    return seg_logits.argmax(1, keepdim=True) == 1


def scan_sigma_r(log_var: Tensor, head: Tensor) -> Tensor:
    """Visual quality: the reconstruction RMSE over the head that the network predicts,
    ``sqrt(mean sigma_r^2)``; ``log_var`` and ``head`` ``(1, 1, D, H, W)``.

    The same statistic as the scan's true reconstruction RMSE over the head, of which sigma_r^2 is the
    per-voxel expectation (Eq. 1). The median sigma_r it replaces is blind to damage confined to less
    than half the head (a noise box, a spike's stripes): on the damage evaluation of the step-10000
    model it ranked the copies' RMSE with Spearman 0.65 and flagged a doubled RMSE with AUROC 0.78,
    against 0.73 and 0.85 for this one (0.95 and 0.96 without the bias field). Fig 3 keeps the
    paper's median (:func:`~hetero_qc.evaluation.predictions.scan_summary`).
    """
    return torch.exp(log_var[head].float()).mean().sqrt()


def scan_sigma_s(seg_logits: Tensor, seg_log_var: Tensor, head: Tensor) -> Tensor:
    """Algorithmic quality: the mean sigma_s over the head weighted by the predicted cortex probability
    (the expected sigma_s of the soft predicted cortex), ``(1, C, D, H, W)`` inputs. Without any cortex
    probability, over the head.

    Voxels the segmentation half gave up still count, by the probability left to them, which the
    hard cortex mean (:func:`scan_sigma_s_cortex`, scores version 2) loses; background the network is
    sure of does not, whatever share of the head it takes, which ruled the head mean
    (:func:`scan_sigma_s_head`, version 3: skull-stripped scans read 2.4x) and, less, the cortex grown
    by 4 mm (:func:`scan_sigma_s_band`, version 4, which takes in noise beside the brain). Chosen among
    the four on ``multitask_any_margin`` by ``experiments/sigma_s_choice.py``
    (``results/sigma_s_choice/multitask_any_margin_step2500/``): AUROC for a CGM Dice drop of more
    than 0.05 0.917 on validation and 0.912 on test (band 0.904, 0.911; head 0.891, 0.910), every clean
    IXI test scan kept, other sites' whole-head single scans at 1.01-1.06x IXI's clean median and the
    skull-stripped one at 1.2x (head 1.30-1.41x, 2.4x), and no NiChart scan flagged once the cut-offs
    are moved there.
    """
    weight = torch.softmax(seg_logits.float(), 1)[:, 1:2][head]
    sigma = torch.exp(0.5 * seg_log_var[head].float())
    return (weight * sigma).sum() / weight.sum() if weight.sum() > 0 else sigma.mean()


def scan_sigma_s_band(seg_logits: Tensor, seg_log_var: Tensor, head: Tensor, spacing: tuple[float, float, float],
                      margin_mm: float = 4.0) -> Tensor:
    """The mean sigma_s over the predicted cortex grown by ``margin_mm`` within the head, ``(1, C, D, H,
    W)`` inputs, ``spacing`` in mm (over the head without predicted cortex): the QC's sigma_s in scores
    version 4, measured beside :func:`scan_sigma_s` by the damage evaluation (``sigma_s_band``)."""
    cortex = predicted_cgm(seg_logits)
    region = grow_mask(cortex, cortex.new_tensor([margin_mm], dtype=torch.float32), spacing) & head.bool() \
        if cortex.any() else head.bool()
    return torch.exp(0.5 * seg_log_var[region].float()).mean()


def scan_sigma_s_head(seg_log_var: Tensor, head: Tensor) -> Tensor:
    """The mean sigma_s over the head, ``(1, 1, D, H, W)`` inputs: the QC's sigma_s in scores version 3,
    measured beside :func:`scan_sigma_s` by the damage evaluation (``sigma_s_head``)."""
    return torch.exp(0.5 * seg_log_var[head].float()).mean()


def scan_sigma_s_cortex(seg_logits: Tensor, seg_log_var: Tensor, head: Tensor) -> Tensor:
    """The mean sigma_s over the predicted cortex, ``(1, C, D, H, W)`` inputs (the paper's Fig 8 reading,
    and the damage evaluation's ``sigma_s_cortex``; the QC score is :func:`scan_sigma_s`).

    Where no voxel is predicted cortex (a scan the segmentation lost entirely), over the whole head:
    that scan's sigma_s must still be defined, and the head is where the cortex should have been.
    """
    cortex = predicted_cgm(seg_logits)
    region = cortex if cortex.any() else head
    return torch.exp(0.5 * seg_log_var[region].float()).mean()
