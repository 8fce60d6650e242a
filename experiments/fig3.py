"""Fig 3: median sigma against reconstruction error over 41 Rician noise levels (+10 to -10 dB).

For each test subject, 41 noisy copies; per copy the median sigma (with quartiles) over the head mask
and the reconstruction error ||recon - clean||^2 (mean over the head). Per subject, R^2 of the linear
fit of error on median sigma (paper: mean 0.851, range 0.736-0.964 over 21 subjects).

    python experiments/fig3.py [--profile cpu|paper] [--from-multirun multirun/evaluate/<time>]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.evaluation.predictions import noisy_copies, predict_copies, scan_summary
from hetero_qc.evaluation.stats import pearson_r

LEVELS = np.round(np.linspace(10, -10, 41), 2).tolist()


def collect(profile: str, seed: int, max_subjects: int | None = None, checkpoint: str | None = None) -> pd.DataFrame:
    model = trained(profile, "recon", max_subjects, checkpoint)
    rows = []
    for scan in model.test_scans:
        copies = noisy_copies(scan.image[None], LEVELS, seed)
        for copy in predict_copies(model.model, copies, LEVELS):
            rows.append({"snr_db": copy.label, **scan_summary(scan, copy)})
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    r = table.groupby("subject").apply(
        lambda t: pearson_r(t["sigma_median"], t["recon_error"]), include_groups=False)
    per_subject = pd.DataFrame({"r2": r**2, "pearson_r": r})
    summary = {
        "r2_mean": float(per_subject["r2"].mean()), "r2_min": float(per_subject["r2"].min()),
        "r2_max": float(per_subject["r2"].max()), "n_subjects": int(len(per_subject)),
        # R^2 is blind to the sign: a sigma that falls as the error grows would score as well.
        "n_sigma_falls_with_error": int((per_subject["pearson_r"] <= 0).sum()),
        "n_recon_worse_than_input": int((table["recon_error"] > table["input_error"]).sum()),
        "n_copies": int(len(table)),
        "paper": {"r2_mean": 0.851, "r2_min": 0.736, "r2_max": 0.964, "n_subjects": 21},
    }
    return summary, per_subject.reset_index()


def plot(table: pd.DataFrame, per_subject: pd.DataFrame) -> plt.Figure:
    figure, (one, every) = plt.subplots(1, 2, figsize=(11, 4.5))
    median_subject = per_subject.sort_values("r2").iloc[len(per_subject) // 2]["subject"]
    t = table[table["subject"] == median_subject]
    one.errorbar(t["sigma_median"], t["recon_error"],
                 xerr=[t["sigma_median"] - t["sigma_q1"], t["sigma_q3"] - t["sigma_median"]], fmt="o", ms=3,
                 elinewidth=0.8, capsize=2)
    r2 = per_subject.set_index("subject").loc[median_subject, "r2"]
    one.set(xlabel="median sigma (head)", ylabel="||recon - clean||^2 (mean over head)",
            title=f"{median_subject} (median R^2 subject): R^2 = {r2:.3f}")
    for _, t in table.groupby("subject"):
        every.plot(t["sigma_median"], t["recon_error"], "-", lw=0.8, alpha=0.7)
    every.set(xlabel="median sigma (head)", ylabel="reconstruction error",
              title=f"all {len(per_subject)} test subjects: R^2 mean {per_subject['r2'].mean():.3f}")
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/fig3")
    parser.add_argument("--from-multirun", help="collect rows.csv files of `hetero-qc evaluate -m` jobs instead")
    args = parser.parse_args()
    if args.from_multirun:
        table = pd.concat([pd.read_csv(p) for p in sorted(Path(args.from_multirun).rglob("rows.csv"))])
    else:
        table = collect(args.profile, args.seed, args.max_subjects, args.checkpoint)
    summary, per_subject = summarise(table)
    save_results(Path(args.out), "fig3", plot(table, per_subject), table, summary)
    print({k: v for k, v in summary.items() if k != "paper"})


if __name__ == "__main__":
    main()
