"""Calibrate the QC verdict cut-offs on the validation split, and ship a trained model with them.

Here, not in ``qc/``: calibration needs the experiments' machinery (the split, the damage table); the
QC tool only reads the cut-offs it wrote (``qc/`` never imports ``evaluation/``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hetero_qc.atomic import write_atomic
from hetero_qc.data import Scan
from hetero_qc.data.augmentation import skull_strip
from hetero_qc.evaluation.damage import DICE_DROP, Variants, damage_table, damage_variants, site_cutoffs
from hetero_qc.evaluation.experiment import Trained
from hetero_qc.qc.scoring import axis_sharpness
from hetero_qc.qc.verdict import FALSE_ALARMS, MIN_SITE_SCANS, SCORED, Cutoffs, youden_threshold


def sharpness_profile(scans: list[Scan]) -> tuple[float, float, float]:
    """The mean :func:`~hetero_qc.qc.scoring.axis_sharpness` of clean ``scans``."""
    return tuple(float(v) for v in np.mean([axis_sharpness(s.image[0], s.head[0]) for s in scans], axis=0))


def _clean_floor(clean_scores: np.ndarray) -> float:
    """The lowest cut-off that flags at most :data:`FALSE_ALARMS` of the clean validation scans (with
    fewer than 20 scans: none of them)."""
    return float(np.quantile(clean_scores, 1 - FALSE_ALARMS, method="higher"))


def calibrate_cutoffs(table: pd.DataFrame, profile: tuple[float, float, float]) -> Cutoffs:
    """Youden-optimal cut-offs on a :func:`~hetero_qc.evaluation.damage.damage_table` of the validation
    split, raised where needed so that at most 5% of the clean validation scans are flagged: sigma_r
    separates the copies whose reconstruction error at least doubled (damage the network cannot undo)
    from clean; blur separates the motion copies (variants named ``motion...``) from clean; sigma_s
    separates copies whose segmentation was damaged (Dice drop > 0.05) from the rest. The clean scans'
    median scores are kept as the cut-offs' ``reference``, for :meth:`~hetero_qc.qc.verdict.Cutoffs.for_site`.

    sigma_r against clean, not against the rest: a corrupted copy whose error rose by less than 2x is
    still degraded, and counted among the negatives it put the cut-off at twice the largest clean sigma_r
    of ``multitask_fixed_seg_norm_deep_instance``, so that `make demo`'s moved scan (reconstruction about
    3x the clean scan's error) came out ``ok`` (TRAINING_LOG.md, stop 48).

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

    damaged, doubled = table["damaged"].to_numpy(), table["error_doubled"].to_numpy()
    method = (f"Youden-optimal on {int(clean.sum())} validation scans and {int((~clean).sum())} corrupted copies, "
              f"each cut-off raised to flag at most {FALSE_ALARMS:.0%} of the clean scans: "
              f"sigma_r separates the {int(doubled.sum())} copies whose reconstruction RMSE at least doubled "
              f"from clean; blur separates the {int(motion.sum())} motion copies "
              f"(CGM Dice down by more than {DICE_DROP} in {int((damaged & motion).sum())}) from clean; ")
    if damaged.any():
        sigma_s = cut("sigma_s", damaged, ~damaged)
        method += (f"sigma_s separates copies whose CGM Dice fell by more than {DICE_DROP} "
                   f"({int(damaged.sum())} copies) from the rest")
    else:
        sigma_s = float(table["sigma_s"].max())
        method += (f"no copy's CGM Dice fell by more than {DICE_DROP}, so sigma_s is cut at the largest value "
                   "seen on validation")
    reference = {key: float(table.loc[clean, key].median()) for key in SCORED}
    return Cutoffs(cut("sigma_r", doubled, clean), sigma_s, cut("blur", motion, clean), profile, method, reference)


def calibrated(model: Trained, variants: Variants, seed: int = 0,
               table: pd.DataFrame | None = None) -> tuple[Cutoffs, pd.DataFrame]:
    """Cut-offs calibrated on ``model``'s validation scans under the damage ``variants``
    (:func:`calibrate_cutoffs`), with their ``skull_stripped`` cut-offs: moved to the same scans
    stripped as training strips them (:func:`~hetero_qc.data.augmentation.skull_strip`), scored clean,
    as a site's clean scans move them (none with fewer than :data:`~hetero_qc.qc.verdict.MIN_SITE_SCANS`
    validation scans); and the calibration table. ``table``: the validation copies already scored (the
    ``validation_scores.csv`` an earlier ship of the same model wrote), used instead of scoring them
    again (``variants`` unused), so a change to the calibration alone takes minutes, not half an hour.

    Raises:
        ValueError: for a ``table`` of other scans than the validation scans, or without a column
            the calibration reads.
    """
    profile = sharpness_profile(model.val_scans)
    if table is None:
        table = damage_table(model, model.val_scans, variants, profile, seed)
    else:
        subjects, expected = set(table.get("subject", [])), {scan.subject for scan in model.val_scans}
        if subjects != expected:
            raise ValueError(f"the scored copies are of {len(subjects)} scans, not of the {len(expected)} validation "
                             "scans of this model's split (another model's, or other --max-subjects?)")
        missing = {"variant", "damaged", "error_doubled", *SCORED} - set(table.columns)
        if missing:
            raise ValueError(f"the scored copies lack the columns {sorted(missing)}")
    cutoffs = calibrate_cutoffs(table, profile)
    if len(model.val_scans) < MIN_SITE_SCANS:
        return cutoffs, table
    stripped = damage_table(model, [skull_strip(scan) for scan in model.val_scans], {}, profile)
    moved = site_cutoffs(cutoffs, stripped, "skull-stripped scans (the validation scans, stripped)")
    return replace(cutoffs, skull_stripped=moved), table


def cutoffs_for(model: Trained, checkpoint: Path, variants: dict, seed: int = 0,
                calibrate: bool = False) -> tuple[Cutoffs, Path | None]:
    """The verdict cut-offs of ``checkpoint``: the ``cutoffs.json`` beside it (a shipped model's) and that
    file, or, for a checkpoint without them or with ``calibrate``, cut-offs calibrated now on ``model``'s
    validation scans under the damage ``variants`` (:func:`~hetero_qc.evaluation.damage.damage_variants`)
    and ``None``."""
    beside = Path(checkpoint).parent / "cutoffs.json"
    if beside.exists() and not calibrate:
        return Cutoffs.load(beside), beside
    return calibrated(model, variants, seed)[0], None


def ship(model: Trained, out_dir: Path, run_dir: Path, overrides: Sequence[str] = (),
         table: pd.DataFrame | None = None) -> Cutoffs:
    """Write a slim checkpoint (weights and hyper-parameters, no optimiser), the cut-offs calibrated on
    the damage variants (``conf/damage.yaml`` with Hydra ``overrides``; or on ``table``, the copies
    already scored, :func:`calibrated`), the validation scores, and the
    run's config and metrics into ``out_dir``. Everything is computed before the first file is written
    (the calibration takes minutes): an interrupted run leaves the shipped model and its cut-offs as
    they were, not a new model beside the old cut-offs."""
    checkpoint = torch.load(model.model.path, map_location="cpu", weights_only=True)
    slim = {key: checkpoint[key] for key in ("state_dict", "hyper_parameters", "hetero_qc", "global_step")}
    slim["state_dict"] = {k: v for k, v in slim["state_dict"].items() if k.startswith("net.")}
    cutoffs, table = calibrated(model, damage_variants(model, overrides) if table is None else {}, table=table)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "model.ckpt", lambda tmp: torch.save(slim, tmp))
    write_atomic(out_dir / "validation_scores.csv", lambda tmp: table.to_csv(tmp, index=False))
    cutoffs.save(out_dir / "cutoffs.json")
    for name in ("config.yaml", "metrics.csv", "split.json"):
        if (run_dir / name).exists():
            write_atomic(out_dir / name, lambda tmp, source=run_dir / name: shutil.copyfile(source, tmp))
    return cutoffs
