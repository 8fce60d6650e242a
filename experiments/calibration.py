"""Beyond the paper: is sigma calibrated? Sparsification and AUSE, UCE, coverage, NLL, sigma scaling.

The reconstruction model on the validation and test scans, each corrupted once by the fixed,
seeded validation pipeline (``conf/corruption/val.yaml``). Voxels of the head mask (every 4th, for
memory). A single factor c on sigma is fitted on validation (closed form, minimum Gaussian NLL) and
reported on test before and after scaling.

    python experiments/calibration.py [--profile cpu|paper]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from hetero_qc.evaluation.calibration import (
    calibration_report,
    fit_sigma_scale,
    sparsification,
)
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.evaluation.predictions import predict_copies
from hetero_qc.inference import sigma

STRIDE = 4


def voxels(model, scans, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed errors and sigmas over the head of every scan, once corrupted by the validation pipeline."""
    pipeline = model.model.val_corruption
    errors, sigmas = [], []
    for index, scan in enumerate(scans):
        clean = scan.image[None]
        generator = torch.Generator().manual_seed(seed + index)
        corrupted = pipeline(clean, scan.spacing, generator, scan.brain[None]).image
        (copy,) = predict_copies(model.model, corrupted, [index])
        head = scan.head[None]
        errors.append((copy.out.mean - clean)[head][::STRIDE].numpy())
        sigmas.append(sigma(copy.out.log_var)[head][::STRIDE].numpy())
    return np.concatenate(errors), np.concatenate(sigmas)


def main() -> None:
    parser = figure_parser(__doc__, "results/calibration")
    args = parser.parse_args()
    model = trained(args.profile, "recon", args.max_subjects, args.checkpoint)
    val_error, val_sigma = voxels(model, model.val_scans, args.seed)
    test_error, test_sigma = voxels(model, model.test_scans, args.seed + 1000)
    scale = fit_sigma_scale(val_error, val_sigma)
    before, after = calibration_report(test_error, test_sigma), calibration_report(test_error, scale * test_sigma)
    summary = {"sigma_scale_fitted_on_val": scale, "test": before, "test_scaled": after,
               "n_val_voxels": int(len(val_error)), "n_test_voxels": int(len(test_error))}

    spars = sparsification(test_error, test_sigma)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(spars["fraction"], spars["curve"], label=f"by sigma (AUSE {before['ause']:.3f})")
    left.plot(spars["fraction"], spars["oracle"], "--", label="oracle (by error)")
    left.set(xlabel="fraction of voxels removed", ylabel="RMSE of the rest", title="Sparsification (test)")
    left.legend()
    ks = np.linspace(0.25, 3, 12)
    for label, s in (("raw", test_sigma), (f"scaled x{scale:.2f}", scale * test_sigma)):
        right.plot(ks, [np.mean(np.abs(test_error) <= k * s) for k in ks], "o-", ms=3, label=label)
    right.plot(ks, 2 * norm.cdf(ks) - 1, "k--", label="calibrated Gaussian")
    right.set(xlabel="k", ylabel="fraction with |error| <= k sigma", title="Coverage (test)")
    right.legend()
    figure.tight_layout()
    table = pd.DataFrame({"fraction": spars["fraction"], "rmse_by_sigma": spars["curve"], "rmse_oracle": spars["oracle"]})
    save_results(Path(args.out), "calibration", figure, table, summary)
    print(summary)


if __name__ == "__main__":
    main()
