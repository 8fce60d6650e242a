"""Quick Fig 3- and Fig 4-style check of any training run on a few validation scans (compares recipes
in minutes).

For each of the first N validation scans of the run's own split, 9 Rician noise levels from +10 to
-10 dB: the median sigma over the head, the reconstruction error and the noisy input's error (mean
squared over the head); then per scan the Pearson r of error on median sigma (its square is Fig 3's
R^2) and the number of levels where the reconstruction is worse than its input. Then the clean scan
itself (error and mean bias of its reconstruction: a good network leaves it alone) and a moderate
motion copy (5 degrees, 5 mm: does sigma rise above the clean scan's, as Fig 4 asks?), each with the
median local scale ``s`` of its input over the head (the heads' anchor: sigma = s exp(g / 2)). TRAINING_LOG.md's
recipe comparisons (normalisation, local-scale heads, loss weighting, checkpoint choice) were made
with it.

    python experiments/noise_probe.py outputs/recon_cpu/<hash> [--scans 3] [--checkpoint last.ckpt]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from hetero_qc.config import severities
from hetero_qc.evaluation.predictions import noisy_copies, predict_copies, scan_summary
from hetero_qc.evaluation.stats import auroc_mann_whitney, pearson_r
from hetero_qc.inference import load_model
from hetero_qc.models.networks import local_variance

LEVELS = [10.0, 7.5, 5.0, 2.5, 0.0, -2.5, -5.0, -7.5, -10.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder (with config.yaml and checkpoints/)")
    parser.add_argument("--scans", type=int, default=3, help="validation scans to use (default 3)")
    parser.add_argument("--checkpoint", default="last.ckpt", help="file in checkpoints/ (default last.ckpt)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    args = parser.parse_args()
    checkpoint = args.run / "checkpoints" / args.checkpoint
    if not (args.run / "config.yaml").is_file() or not checkpoint.is_file():
        parser.error(f"{args.run}: not a run folder (needs config.yaml and checkpoints/{args.checkpoint})")
    model = replace(load_model(checkpoint), roi_size=None)  # the whole volume as one window
    cfg = OmegaConf.load(args.run / "config.yaml")
    with open_dict(cfg):
        cfg.run_dir, cfg.data.split_dir, cfg.data.max_eval_subjects = str(args.run), None, args.scans
    datamodule = instantiate(cfg.data)
    datamodule.setup("validate")
    motion_above_clean, clean_errors, sigma_clean, sigma_motion = [], [], [], []
    for index, scan in enumerate(datamodule.scans["val"]):
        clean = scan.image[None]
        moved = severities()["motion"]["moderate"](clean, scan.spacing, torch.Generator().manual_seed(args.seed + index))
        copies = torch.cat([noisy_copies(clean, LEVELS, args.seed), clean, moved.image])
        predicted = list(predict_copies(model, copies, [*LEVELS, "clean", "motion"]))
        rows = [scan_summary(scan, copy) for copy in predicted]
        sigma, error, noisy = (np.array([r[k] for r in rows[: len(LEVELS)]])
                               for k in ("sigma_median", "recon_error", "input_error"))
        print(f"{scan.subject}: Pearson r {pearson_r(sigma, error):.3f} (R^2 {pearson_r(sigma, error) ** 2:.3f}), "
              f"worse than input at {int((error > noisy).sum())} of {len(LEVELS)} levels")
        print(f"  median sigma {np.round(sigma, 3).tolist()}\n  recon error  {np.round(error, 4).tolist()}\n"
              f"  input error  {np.round(noisy, 4).tolist()}")
        (clean_row, motion_row), head = rows[len(LEVELS):], scan.head[None]
        bias = float((predicted[len(LEVELS)].out.mean - clean)[head].mean())
        scale_clean, scale_motion = (float(local_variance(x).sqrt()[head].median()) for x in (clean, moved.image))
        print(f"  clean input: error {clean_row['recon_error']:.4f} (mean bias {bias:+.3f}), "
              f"median sigma {clean_row['sigma_median']:.3f}, local scale {scale_clean:.3f}")
        print(f"  motion 5 deg, 5 mm: error {motion_row['recon_error']:.4f} (input {motion_row['input_error']:.4f}), "
              f"median sigma {motion_row['sigma_median']:.3f}, local scale {scale_motion:.3f}")
        motion_above_clean.append(motion_row["sigma_median"] > clean_row["sigma_median"])
        clean_errors.append(clean_row["recon_error"])
        sigma_clean.append(clean_row["sigma_median"])
        sigma_motion.append(motion_row["sigma_median"])
    auroc, _ = auroc_mann_whitney(np.array(sigma_motion), np.array(sigma_clean))
    print(f"mean clean-input error {np.mean(clean_errors):.4f}; motion sigma above clean in "
          f"{sum(motion_above_clean)} of {len(motion_above_clean)} scans; median sigma clean "
          f"{np.mean(sigma_clean):.3f} -> motion {np.mean(sigma_motion):.3f}, AUROC {auroc:.2f} (Fig 4's statistic)")

if __name__ == "__main__":
    main()
