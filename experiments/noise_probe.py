"""Quick Fig 3-style check of any training run on a few validation scans (compares recipes in minutes).

For each of the first N validation scans of the run's own split, 9 Rician noise levels from +10 to
-10 dB: the median sigma over the head, the reconstruction error and the noisy input's error (mean
squared over the head); then per scan the Pearson r of error on median sigma (its square is Fig 3's
R^2) and the number of levels where the reconstruction is worse than its input. The README's recipe
comparisons (normalisation, local-scale heads, checkpoint choice) were made with it.

    python experiments/noise_probe.py outputs/recon_cpu/<hash> [--scans 3] [--checkpoint last.ckpt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from hetero_qc.evaluation.predictions import noisy_copies, predict_copies, scan_summary
from hetero_qc.evaluation.stats import pearson_r
from hetero_qc.inference import load_network

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
    net, _ = load_network(checkpoint)
    cfg = OmegaConf.load(args.run / "config.yaml")
    with open_dict(cfg):
        cfg.run_dir, cfg.data.split_dir, cfg.data.max_eval_subjects = str(args.run), None, args.scans
    datamodule = instantiate(cfg.data)
    datamodule.setup("validate")
    for scan in datamodule.scans["val"]:
        copies = noisy_copies(scan.image[None], LEVELS, args.seed)
        rows = [scan_summary(scan, copy) for copy in predict_copies(net, copies, LEVELS, None)]
        sigma, error, noisy = (np.array([r[k] for r in rows]) for k in ("sigma_median", "recon_error", "input_error"))
        print(f"{scan.subject}: Pearson r {pearson_r(sigma, error):.3f} (R^2 {pearson_r(sigma, error) ** 2:.3f}), "
              f"worse than input at {int((error > noisy).sum())} of {len(LEVELS)} levels")
        print(f"  median sigma {np.round(sigma, 3).tolist()}\n  recon error  {np.round(error, 4).tolist()}\n"
              f"  input error  {np.round(noisy, 4).tolist()}")


if __name__ == "__main__":
    main()
