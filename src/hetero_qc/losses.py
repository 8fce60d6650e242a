"""Losses of the paper (Shaw et al. 2020, Eqs. 1-3), optionally over a mask.

All take ``(input..., target)`` shaped ``(B, C, D, H, W)`` and return the mean over the (masked) voxels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1)


def _beta_weighted_mean(loss: Tensor, log_var: Tensor, beta: float, mask: Tensor | None) -> Tensor:
    """Mean over ``mask`` of ``loss`` weighted per voxel by a stop-gradient ``sigma^(2 beta)``
    (beta-NLL, Seitzer et al., ICLR 2022); ``beta = 0`` is the plain mean.

    Raises:
        ValueError: if ``beta`` is outside [0, 1].
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if beta > 0:
        loss = loss * torch.exp(beta * log_var.detach())
    return _masked_mean(loss, mask)


def heteroscedastic_nll(
    mean: Tensor, log_var: Tensor, target: Tensor, mask: Tensor | None = None, beta: float = 0.0,
    decoupled: bool = False,
) -> Tensor:
    """Eq. 1: ``1/2 exp(-s) (y - f)^2 + 1/2 s`` per voxel, ``s = log sigma^2``; mean over ``mask``.

    Args:
        mean: ``f``, ``(B, 1, D, H, W)``.
        log_var: ``s``, same shape.
        target: clean image ``y``, same shape.
        mask: optional boolean voxels to average over.
        beta: beta-NLL (Seitzer et al., ICLR 2022): each voxel's loss is weighted by a stop-gradient
            ``sigma^(2 beta)``, so high-variance voxels keep a gradient on their mean. 0 is Eq. 1.
        decoupled: the mean keeps beta-NLL's gradient, but the log-variance gets Eq. 1's own,
            unweighted, on the residual of the detached mean (variance fitted to the mean's errors,
            as in Stirn et al. 2023 and Sluijterman et al. 2023). With beta-NLL the log-variance's
            gradient is scaled by sigma^(2 beta) as well: at beta = 0.5 and sigma about 0.07 (the long
            recipe at step 1000) it learned about 14x slower than the mean, and sigma stayed within
            10% of the same value on clean and moved scans whose errors differed 2.5x.

    Raises:
        ValueError: if ``beta`` is outside [0, 1].
    """
    mean, log_var, target = mean.float(), log_var.float(), target.float()
    if decoupled:
        fixed = log_var.detach()
        mean_term = _beta_weighted_mean(0.5 * torch.exp(-fixed) * (target - mean) ** 2, fixed, beta, mask)
        residual = (target - mean.detach()) ** 2
        return mean_term + _masked_mean(0.5 * torch.exp(-log_var) * residual + 0.5 * log_var, mask)
    nll = 0.5 * torch.exp(-log_var) * (target - mean) ** 2 + 0.5 * log_var
    return _beta_weighted_mean(nll, log_var, beta, mask)


def uncertainty_weighted_ce(
    logits: Tensor, log_var: Tensor, target: Tensor, mask: Tensor | None = None, beta: float = 0.0
) -> Tensor:
    """Eq. 2: ``exp(-s_s) CE + 1/2 s_s`` per voxel (Kendall et al. 2018), ``s_s = log sigma_s^2``.

    Args:
        logits: ``(B, K, D, H, W)`` class scores.
        log_var: ``(B, 1, D, H, W)`` task log-variance.
        target: ``(B, 1, D, H, W)`` integer (or boolean) class of each voxel.
        mask: optional boolean voxels to average over.
        beta: as in :func:`heteroscedastic_nll`, each voxel's loss is weighted by a stop-gradient
            ``sigma_s^(2 beta)``. With 1 the logits get the plain cross-entropy gradient wherever
            sigma_s is large, and the optimum ``s_s = log(2 CE)`` is unchanged. Measured with Eq. 2
            as is (beta = 0): the network raised sigma_s over the whole brain and its CGM Dice
            stalled at 0.25 from step 400 to 1200 (multitask_cpu).

    Raises:
        ValueError: if ``beta`` is outside [0, 1].
    """
    ce = F.cross_entropy(logits.float(), target[:, 0].long(), reduction="none").unsqueeze(1)
    log_var = log_var.float()
    return _beta_weighted_mean(torch.exp(-log_var) * ce + 0.5 * log_var, log_var, beta, mask)


def consistency_kl(logits: Tensor, reference_logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """``KL(p_ref || p)`` per voxel over the classes, mean over ``mask``: the segmentation of a corrupted
    input pulled towards the same network's segmentation of the clean input (the reference, held fixed).

    The cross-entropy against the labels asks for the right segmentation under every artefact; this term
    asks that an artefact change nothing in the clean scan's prediction (the paper's Fig 1b: an artefact
    away from the cortex leaves the segmentation alone), as AugMix's consistency did for image
    classifiers (Hendrycks et al., ICLR 2020). Measured at weight 5 (``multitask_consistency``, TRAINING_LOG.md):
    the corrupted copies' CGM Dice did not move and the clean scans' fell.

    Args:
        logits: ``(B, K, D, H, W)`` class scores on the corrupted input (gets the gradient).
        reference_logits: ``(B, K, D, H, W)`` class scores on the clean input (detached here).
        mask: optional boolean ``(B, 1, D, H, W)`` voxels to average over.
    """
    reference = F.log_softmax(reference_logits.detach().float(), dim=1)
    kl = F.kl_div(F.log_softmax(logits.float(), dim=1), reference, reduction="none", log_target=True)
    return _masked_mean(kl.sum(1, keepdim=True), mask)
