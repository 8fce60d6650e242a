"""Fig 7-8: the multi-task model on clean scans and on the same scans with partial noise.

Partial noise degrades visual quality where the cortex is not: (a) outside the brain mask, (b) in the
inferior 30% of the field of view (neck). Per scan: total sigma_r (mean over the head) and sigma_s
(mean over the predicted cortex), their relative changes with a Wilcoxon test, and the CGM Dice.
The paper's claim holds when sigma_r rises clearly while sigma_s barely moves.

    python experiments/fig8.py [--profile cpu|paper] [--snr-db -5]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.evaluation.predictions import (
    PARTIAL_REGIONS,
    partial_noise,
    predict_copies,
    scan_summary,
)
from hetero_qc.evaluation.stats import paired_relative_change


def collect(profile: str, snr_db: float, seed: int, max_subjects: int | None = None,
            checkpoint: str | None = None) -> pd.DataFrame:
    model = trained(profile, "multitask", max_subjects, checkpoint)
    rows = []
    for index, scan in enumerate(model.test_scans):
        clean, brain = scan.image[None], scan.brain[None]
        copies = [clean] + [partial_noise(clean, brain, c, snr_db, seed + index) for c in PARTIAL_REGIONS]
        for copy in predict_copies(model.model, torch.cat(copies), ["clean", *PARTIAL_REGIONS]):
            rows.append({"condition": copy.label, **scan_summary(scan, copy)})
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, snr_db: float) -> dict:
    clean = table[table["condition"] == "clean"].set_index("subject")
    per_condition = {}
    for condition in PARTIAL_REGIONS:
        noisy = table[table["condition"] == condition].set_index("subject").loc[clean.index]
        r_change, r_p = paired_relative_change(clean["sigma_mean"], noisy["sigma_mean"])
        s_change, s_p = paired_relative_change(clean["sigma_seg_mean"], noisy["sigma_seg_mean"])
        per_condition[condition] = {
            "sigma_r_rel_change": r_change, "sigma_r_wilcoxon_p": r_p,
            "sigma_s_rel_change": s_change, "sigma_s_wilcoxon_p": s_p,
            "dice_clean": float(clean["dice_cgm"].mean()), "dice_partial": float(noisy["dice_cgm"].mean()),
        }
    main = per_condition["outside_brain"]
    return {**{k: main[k] for k in ("sigma_r_rel_change", "sigma_s_rel_change", "dice_clean", "dice_partial")},
            "condition": "outside_brain", "snr_db": snr_db, "by_condition": per_condition,
            "n_subjects": int(len(clean))}


def plot(table: pd.DataFrame) -> plt.Figure:
    figure, axes = plt.subplots(1, 3, figsize=(12, 4))
    conditions = ["clean", *PARTIAL_REGIONS]
    for ax, (column, title) in zip(axes, [("sigma_mean", "sigma_r (mean over head)"),
                                         ("sigma_seg_mean", "sigma_s (mean over cortex)"), ("dice_cgm", "CGM Dice")]):
        data = [table[table["condition"] == c][column] for c in conditions]
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.plot(np.full(len(values), i), values, ".", color="k", alpha=0.5, ms=3)
        ax.set_xticks(range(1, len(conditions) + 1), conditions, fontsize=8)
        ax.set_title(title)
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/fig8")
    parser.add_argument("--snr-db", type=float, default=-5.0)
    args = parser.parse_args()
    table = collect(args.profile, args.snr_db, args.seed, args.max_subjects, args.checkpoint)
    summary = summarise(table, args.snr_db)
    save_results(Path(args.out), "fig8", plot(table), table, summary)
    print({k: v for k, v in summary.items() if k != "by_condition"})


if __name__ == "__main__":
    main()
