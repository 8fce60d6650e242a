"""Fig 4: total sigma of clean test scans against the same scans with simulated artefacts.

The paper compares real test/retest pairs; here every test scan gets each artefact at three graded
severities (seeded), and the scan sigma_r (the predicted RMSE over the head) separates artefacted from clean scans:
AUROC and the Mann-Whitney p per artefact and severity. Beside it, as a baseline, the same AUROC for
the QC tool's model-free blur score (``auroc_blur``; :func:`hetero_qc.qc.scoring.axis_blur`, against
the sharpness profile of the clean validation scans).

    python experiments/fig4.py [--profile cpu|paper]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from hetero_qc.config import severities
from hetero_qc.evaluation.cutoffs import sharpness_profile
from hetero_qc.evaluation.damage import damage_table
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.evaluation.stats import auroc_mann_whitney

SEVERITIES = severities()  # conf/severities/graded.yaml


def collect(profile: str, seed: int, max_subjects: int | None = None, checkpoint: str | None = None) -> pd.DataFrame:
    """Every test scan clean and under each graded artefact: its scan scores
    (:func:`~hetero_qc.evaluation.damage.damage_table`)."""
    model = trained(profile, "recon", max_subjects, checkpoint)
    return damage_table(model, model.test_scans, SEVERITIES, sharpness_profile(model.val_scans), seed)


def summarise(table: pd.DataFrame) -> dict:
    """AUROC and Mann-Whitney p of artefacted against clean copies, per artefact and severity: of the
    scan sigma_r (``auroc``, :func:`~hetero_qc.metrics.scan_sigma_r`) and of the blur score (``auroc_blur``)."""
    clean = table[table["artefact"] == "clean"]
    summary: dict = {"n_subjects": int(len(clean))}
    for score, suffix in (("sigma_r", ""), ("blur", "_blur")):
        auroc, p_values = {}, {}
        for (artefact, severity), t in table[table["artefact"] != "clean"].groupby(["artefact", "severity"]):
            auroc.setdefault(artefact, {})[severity], p_values.setdefault(artefact, {})[severity] = \
                auroc_mann_whitney(t[score].to_numpy(), clean[score].to_numpy())
        summary["auroc" + suffix], summary["mann_whitney_p" + suffix] = auroc, p_values
    return summary


def plot(table: pd.DataFrame) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(11, 4.5))
    groups = [("clean", "none")] + [(a, s) for a, levels in SEVERITIES.items() for s in levels]
    data = [table[(table["artefact"] == a) & (table["severity"] == s)]["sigma_r"] for a, s in groups]
    ax.boxplot(data, showfliers=False)
    for i, values in enumerate(data, start=1):
        ax.plot([i] * len(values), values, ".", alpha=0.5, color="k", ms=3)
    ax.set_xticks(range(1, len(groups) + 1), ["clean"] + [f"{a}\n{s}" for a, s in groups[1:]], fontsize=8)
    ax.set(ylabel="sigma_r: predicted RMSE over the head", title="Total uncertainty: clean vs simulated artefacts (test split)")
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/fig4")
    args = parser.parse_args()
    table = collect(args.profile, args.seed, args.max_subjects, args.checkpoint)
    summary = summarise(table)
    save_results(Path(args.out), "fig4", plot(table), table, summary)
    print("sigma:", summary["auroc"], "blur:", summary["auroc_blur"], sep="\n")


if __name__ == "__main__":
    main()
