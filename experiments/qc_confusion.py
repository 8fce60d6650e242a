"""Do the shipped model's verdicts separate clean from corrupted IXI test scans?

The test split of the shipped model, each scan clean and with the corruptions used to calibrate the
cut-offs (on the validation split): verdict counts per variant -> results/qc/.

    python experiments/qc_confusion.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.paths import REPO_ROOT
from hetero_qc.qc.calibrate import confusion, corruption_scores
from hetero_qc.qc.verdict import Cutoffs


def main() -> None:
    parser = figure_parser(__doc__, "results/qc")
    parser.add_argument("--model-dir", default=str(REPO_ROOT / "models" / "default"))
    args = parser.parse_args()
    model = trained(args.profile, "multitask", args.max_subjects)
    cutoffs = Cutoffs.load(Path(args.model_dir) / "cutoffs.json")
    table = corruption_scores(model, model.test_scans, seed=args.seed + 10_000)
    matrix = confusion(table, cutoffs, tuple(table["variant"].unique()))
    figure, ax = plt.subplots(figsize=(7, 3.5))
    ax.scatter(table["sigma_r"], table["sigma_s"], c=table["variant"].astype("category").cat.codes, cmap="tab10", s=12)
    ax.axvline(cutoffs.sigma_r, color="k", ls="--")
    ax.axhline(cutoffs.sigma_s, color="k", ls=":")
    ax.set(xlabel="sigma_r (visual)", ylabel="sigma_s (algorithmic)", title="Test scans and their corrupted copies")
    summary = {"confusion": matrix.to_dict(orient="index"), "cutoffs": {"sigma_r": cutoffs.sigma_r, "sigma_s": cutoffs.sigma_s},
               "n_subjects": int(table["subject"].nunique())}
    save_results(Path(args.out), "qc_confusion", figure, table, summary)
    print(matrix.to_string())


if __name__ == "__main__":
    main()
