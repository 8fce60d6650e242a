"""Corrupt preprocessed scans with chosen artefacts and predict, in batches of corrupted copies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from hetero_qc.corruption import NoiseParams, rician_noise, sigma_for_snr
from hetero_qc.corruption.noise import FULL_BOX
from hetero_qc.data import Scan
from hetero_qc.inference import TrainedModel, sigma
from hetero_qc.metrics import dice, predicted_cgm, scan_sigma_s_cortex
from hetero_qc.models.networks import NetOutput


class Copy(NamedTuple):
    """One corrupted copy of a scan and the network's prediction for it, ``(1, 1, D, H, W)`` each."""

    label: object  # what made the copy: an SNR, an (artefact, severity) pair...
    corrupted: Tensor
    out: NetOutput


def noisy_copies(clean: Tensor, snr_db: list[float], seed: int) -> Tensor:
    """Rician-noise copies of ``clean`` ``(1, 1, D, H, W)``, one per SNR: ``(L, 1, D, H, W)``.

    A level's noise depends only on ``seed`` and the level, so a sweep split over jobs draws the same.
    """
    levels = torch.tensor(snr_db, dtype=torch.float32)
    batch = clean.expand(len(levels), *clean.shape[1:])
    seeds = torch.tensor([seed * 100_003 + round((level + 1000) * 100) for level in snr_db])
    params = NoiseParams(snr_db=levels, sigma=sigma_for_snr(batch, levels), seed=seeds,
                         box=torch.tensor(FULL_BOX).repeat(len(levels), 1))
    return rician_noise(batch, params)


PARTIAL_REGIONS = {"outside_brain": (0.0, 0.0, 0.0, 1.0, 1.0, 1.0), "inferior_fov": (0.0, 0.0, 0.0, 1.0, 1.0, 0.3)}


def partial_noise(clean: Tensor, brain: Tensor, region: str, snr_db: float, seed: int) -> Tensor:
    """Rician noise at ``snr_db`` confined to a region of ``clean`` ``(1, 1, D, H, W)`` (the paper's
    Fig 7-8): ``outside_brain`` (everywhere but ``brain``) or ``inferior_fov`` (the inferior 30% of
    the field of view; in RAS+ axis 2 runs inferior to superior).
    """
    snr = torch.tensor([snr_db])
    params = NoiseParams(snr, sigma_for_snr(clean, snr), torch.tensor([seed]), torch.tensor([PARTIAL_REGIONS[region]]))
    return rician_noise(clean, params, region=~brain.bool() if region == "outside_brain" else None)


def predict_copies(
    model: TrainedModel,
    copies: Tensor,
    labels: list,
    chunk: int = 4,
) -> Iterator[Copy]:
    """Predict each of ``copies`` ``(L, 1, D, H, W)``, ``chunk`` at a time, as ``model`` predicts
    (:meth:`~hetero_qc.inference.TrainedModel.predict`)."""
    for start in range(0, len(copies), chunk):
        part = copies[start : start + chunk]
        out = model.predict(part)
        for i in range(len(part)):
            yield Copy(labels[start + i], part[i : i + 1], NetOutput(*(None if t is None else t[i : i + 1] for t in out)))


def masked_quartiles(values: Tensor, mask: Tensor) -> tuple[float, float, float]:
    """1st quartile, median and 3rd quartile of ``values`` over ``mask``."""
    selected = values[mask].float()
    q = torch.quantile(selected[:: max(1, selected.numel() // 1_000_000)], torch.tensor([0.25, 0.5, 0.75]))
    return float(q[0]), float(q[1]), float(q[2])


def scan_summary(scan: Scan, copy: Copy) -> dict:
    """Per-copy numbers shared by the figures: sigma quartiles over the head, errors over the head."""
    clean, head = scan.image[None], scan.head[None]
    s = sigma(copy.out.log_var)
    q1, median, q3 = masked_quartiles(s, head)
    row = {
        "subject": scan.subject,
        "sigma_q1": q1, "sigma_median": median, "sigma_q3": q3,
        "sigma_mean": float(s[head].mean()),
        "recon_error": float(((copy.out.mean - clean) ** 2)[head].mean()),
        "input_error": float(((copy.corrupted - clean) ** 2)[head].mean()),
    }
    if copy.out.seg_log_var is not None:
        cgm = predicted_cgm(copy.out.seg_logits)
        row["sigma_seg_mean"] = float(scan_sigma_s_cortex(copy.out.seg_logits, copy.out.seg_log_var, head))
        row["dice_cgm"] = float(dice(cgm, scan.cgm[None]))
    return row


