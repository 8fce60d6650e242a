"""Calibrate the verdict cut-offs on the validation split, and ship a trained model with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate

from hetero_qc.atomic import write_atomic
from hetero_qc.config import severities
from hetero_qc.data import Scan
from hetero_qc.evaluation.experiment import Trained
from hetero_qc.evaluation.predictions import noisy_copies, partial_noise, predict_copies
from hetero_qc.metrics import dice, predicted_cgm
from hetero_qc.qc.scoring import axis_sharpness, scan_scores
from hetero_qc.qc.verdict import Cutoffs, ScanScores, youden_threshold

DICE_DROP = 0.05  # a corrupted copy whose CGM Dice falls by more than this is algorithmically damaged
FALSE_ALARMS = 0.05  # at most this share of clean validation scans may be flagged by a cut-off


def _dice(out, scan) -> float:
    return float(dice(predicted_cgm(out.seg_logits), scan.cgm[None]))


def sharpness_profile(scans: list[Scan]) -> tuple[float, float, float]:
    """The mean :func:`~hetero_qc.qc.scoring.axis_sharpness` of clean ``scans``."""
    return tuple(float(v) for v in np.mean([axis_sharpness(s.image[0], s.head[0]) for s in scans], axis=0))


def corruption_scores(model: Trained, scans: list[Scan], profile: tuple[float, float, float],
                      seed: int = 0) -> pd.DataFrame:
    """Scores (blur against the clean sharpness ``profile``) and CGM Dice of every scan, clean and under
    graded corruptions (seeded)."""
    pipeline = instantiate(model.hparams["val_corruption"])
    motion = severities()["motion"]
    rows = []
    for index, scan in enumerate(scans):
        clean = scan.image[None]
        generator = torch.Generator().manual_seed(seed + index)
        variants = {
            "clean": clean,
            "val_pipeline": pipeline(clean, scan.spacing, generator, scan.brain[None]).image,
            "partial_noise": partial_noise(clean, scan.brain[None], "outside_brain", -5.0, seed + index),
            "motion_moderate": motion["moderate"](clean, scan.spacing, generator).image,
            "motion_severe": motion["severe"](clean, scan.spacing, generator).image,
            "noise_0db": noisy_copies(clean, [0.0], seed + index),
        }
        for copy in predict_copies(model.net, torch.cat(list(variants.values())), list(variants), model.roi_size):
            scores = scan_scores(copy.corrupted, scan, copy.out, profile)
            rows.append({"subject": scan.subject, "variant": copy.label, "sigma_r": scores.sigma_r,
                         "sigma_s": scores.sigma_s, "blur": scores.blur, "dice": _dice(copy.out, scan)})
    table = pd.DataFrame(rows)
    clean_dice = table[table["variant"] == "clean"].set_index("subject")["dice"]
    table["damaged"] = table["dice"] < table["subject"].map(clean_dice) - DICE_DROP
    return table


def _clean_floor(clean_scores: np.ndarray) -> float:
    """The lowest cut-off that flags at most :data:`FALSE_ALARMS` of the clean validation scans (with
    fewer than 20 scans: none of them)."""
    return float(np.quantile(clean_scores, 1 - FALSE_ALARMS, method="higher"))


def calibrate_cutoffs(table: pd.DataFrame, profile: tuple[float, float, float]) -> Cutoffs:
    """Youden-optimal cut-offs, raised where needed so that at most 5% of the clean validation scans are
    flagged: sigma_r separates corrupted from clean copies; blur separates the motion copies (variants
    named ``motion...``) from clean; sigma_s separates copies whose segmentation was damaged (Dice drop
    > 0.05) from the rest.

    Without the floor, a model whose sigma_s barely moves put the Youden cut-off inside the clean scans'
    range and excluded 7 of 16 clean test scans. When no validation copy had its segmentation damaged,
    the sigma_s cut-off is the largest sigma_s seen on validation (nothing like it is excluded), and
    ``method`` says so.
    """
    clean = (table["variant"] == "clean").to_numpy()
    motion = table["variant"].astype(str).str.startswith("motion").to_numpy()

    def cut(key: str, positive: np.ndarray, negative: np.ndarray) -> float:
        floor = _clean_floor(table.loc[clean, key].to_numpy())
        return max(youden_threshold(table.loc[positive, key].to_numpy(), table.loc[negative, key].to_numpy()), floor)

    damaged = table["damaged"].to_numpy()
    method = (f"Youden-optimal on {int(clean.sum())} validation scans and {int((~clean).sum())} corrupted copies, "
              f"each cut-off raised to flag at most {FALSE_ALARMS:.0%} of the clean scans: "
              f"sigma_r separates corrupted from clean; blur separates the {int(motion.sum())} motion copies "
              f"(CGM Dice down by more than {DICE_DROP} in {int((damaged & motion).sum())}) from clean; ")
    if damaged.any():
        sigma_s = cut("sigma_s", damaged, ~damaged)
        method += (f"sigma_s separates copies whose CGM Dice fell by more than {DICE_DROP} "
                   f"({int(damaged.sum())} copies) from the rest")
    else:
        sigma_s = float(table["sigma_s"].max())
        method += (f"no copy's CGM Dice fell by more than {DICE_DROP}, so sigma_s is cut at the largest value "
                   "seen on validation")
    return Cutoffs(cut("sigma_r", ~clean, clean), sigma_s, cut("blur", motion, clean), profile, method)


def ship(model: Trained, out_dir: Path, run_dir: Path) -> Cutoffs:
    """Write a slim checkpoint (weights and hyper-parameters, no optimiser), the cut-offs, the validation
    scores, and the run's config and metrics into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = torch.load(model.checkpoint, map_location="cpu", weights_only=True)
    slim = {key: checkpoint[key] for key in ("state_dict", "hyper_parameters", "hetero_qc", "global_step")}
    slim["state_dict"] = {k: v for k, v in slim["state_dict"].items() if k.startswith("net.")}
    write_atomic(out_dir / "model.ckpt", lambda tmp: torch.save(slim, tmp))
    profile = sharpness_profile(model.val_scans)
    table = corruption_scores(model, model.val_scans, profile)
    write_atomic(out_dir / "validation_scores.csv", lambda tmp: table.to_csv(tmp, index=False))
    cutoffs = calibrate_cutoffs(table, profile)
    cutoffs.save(out_dir / "cutoffs.json")
    for name in ("config.yaml", "metrics.csv", "split.json"):
        if (run_dir / name).exists():
            write_atomic(out_dir / name, lambda tmp, source=run_dir / name: shutil.copyfile(source, tmp))
    return cutoffs


def confusion(table: pd.DataFrame, cutoffs: Cutoffs, variants: tuple[str, ...]) -> pd.DataFrame:
    """Verdict counts per variant (rows) for the scores in ``table``."""
    verdicts = table.apply(lambda r: cutoffs.verdict(ScanScores(r["sigma_r"], r["sigma_s"], np.nan, r["blur"])), axis=1)
    subset = table.assign(verdict=verdicts)
    subset = subset[subset["variant"].isin(variants)]
    return pd.crosstab(subset["variant"], subset["verdict"])
