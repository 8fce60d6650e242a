"""``hetero-qc calibrate-site``: move a model's verdict cut-offs to a new site, from clean scans of it.

The cut-offs are calibrated on IXI Hammersmith validation scans. A new scanner shifts every clean
score, so a site brings a handful of its own clean scans (:data:`~hetero_qc.qc.verdict.MIN_SITE_SCANS`
or more), and :meth:`~hetero_qc.qc.verdict.Cutoffs.for_site` moves each cut-off by how far the
site's clean median lies from the calibration's. ``hetero-qc qc --cutoffs FILE`` then uses them.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from hetero_qc.qc.inputs import expand_inputs
from hetero_qc.qc.run import load_qc_model
from hetero_qc.qc.scoring import axis_sharpness, infer_file, scan_scores
from hetero_qc.qc.verdict import Cutoffs


def calibrate_site(inputs: list[str], out: Path, model: Path, site: str, device: str = "auto") -> Cutoffs:
    """Score the clean scans ``inputs`` (files, folders, BIDS datasets) of ``site`` and write the
    model's cut-offs moved there to ``out`` (atomically).

    Raises:
        ValueError: for an input that cannot be scored (every reference scan must be), too few scans,
            or cut-offs that cannot be moved (:meth:`~hetero_qc.qc.verdict.Cutoffs.for_site`).
    """
    trained, cutoffs, target = load_qc_model(model, device)
    items = expand_inputs(inputs)
    for item in items:
        if item.problem:
            raise ValueError(f"{item.path}: {item.problem}")
    sigma_r, sigma_s, sharpness = [], [], []
    for item in tqdm(items, desc="scoring the site's clean scans", unit="scan", disable=None):
        scan, output, _ = infer_file(trained, item.name, item.path, target)
        scores = scan_scores(scan.image[None], scan, output, cutoffs.sharpness)
        sigma_r.append(scores.sigma_r)
        sigma_s.append(scores.sigma_s)
        sharpness.append(axis_sharpness(scan.image[0], scan.head[0]))
    moved = cutoffs.for_site(sigma_r, sigma_s, sharpness, site)
    moved.save(out)
    return moved
