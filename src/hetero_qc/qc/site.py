"""``hetero-qc calibrate-site``: move a model's verdict cut-offs to a new site, from clean scans of it.

The cut-offs are calibrated on IXI Hammersmith validation scans. A new scanner shifts every clean
score, so a site brings a handful of its own clean scans (:data:`~hetero_qc.qc.verdict.MIN_SITE_SCANS`
or more), and :meth:`~hetero_qc.qc.verdict.Cutoffs.for_site` moves each cut-off by how far the
site's clean median lies from the calibration's, raised where the site's clean scans spread wider.
``hetero-qc qc --cutoffs FILE`` then uses them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from hetero_qc.qc.inputs import expand_inputs
from hetero_qc.qc.run import load_qc_model, model_hash, writable_folder
from hetero_qc.qc.scoring import axis_sharpness, infer_file, scan_scores
from hetero_qc.qc.verdict import MIN_SITE_SCANS, SCORED, Cutoffs

VALIDATION_SCORES = "validation_scores.csv"  # beside a shipped model: the calibration's table (evaluation.cutoffs.ship)


def with_reference(cutoffs: Cutoffs, model: Path) -> Cutoffs:
    """``cutoffs`` with their clean reference: cut-offs calibrated before it was stored take it from the
    clean rows of the calibration table shipped beside the model (the same medians)."""
    table = Path(model).parent / VALIDATION_SCORES
    if cutoffs.reference or not table.is_file():
        return cutoffs
    clean = pd.read_csv(table).query("variant == 'clean'")
    return replace(cutoffs, reference={key: float(clean[key].median()) for key in SCORED}) if len(clean) else cutoffs


def calibrate_site(inputs: list[str], out: Path, model: Path, site: str, device: str = "auto") -> Cutoffs:
    """Score the clean scans ``inputs`` (files, folders, BIDS datasets) of ``site`` and write the
    model's cut-offs moved there to ``out`` (atomically).

    Raises:
        ValueError: for an input that cannot be scored (every reference scan must be), too few scans,
            an output that cannot be written, or cut-offs that cannot be moved
            (:meth:`~hetero_qc.qc.verdict.Cutoffs.for_site`); each before any scan is scored.
    """
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; --out names the cut-offs file to write")
    writable_folder(out.parent)
    trained, cutoffs, target = load_qc_model(model, device)
    cutoffs = with_reference(cutoffs, model)
    items = expand_inputs(inputs)
    for item in items:
        if item.problem:
            raise ValueError(f"{item.path}: {item.problem}")
    if len(items) < MIN_SITE_SCANS or not cutoffs.reference:  # the same errors as after scoring, without the wait
        cutoffs.for_site([0.0] * len(items), [0.0] * len(items), [(0.0, 0.0, 0.0)] * len(items), site)
    sigma_r, sigma_s, sharpness = [], [], []
    for item in tqdm(items, desc="scoring the site's clean scans", unit="scan", disable=None):
        scan, output, _ = infer_file(trained, item.name, item.path, target)
        scores = scan_scores(scan.image[None], scan, output, cutoffs.sharpness)
        sigma_r.append(scores.sigma_r)
        sigma_s.append(scores.sigma_s)
        sharpness.append(axis_sharpness(scan.image[0], scan.head[0]))
    moved = replace(cutoffs.for_site(sigma_r, sigma_s, sharpness, site), model_sha256=model_hash(model))
    moved.save(out)
    return moved
