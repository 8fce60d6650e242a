"""The damage evaluation: do sigma_r and sigma_s track the damage a corruption really did?

Every test scan clean and under each corruption of ``conf/damage.yaml`` (motion, ghosting, spikes,
bias field and Rician noise at three severities, noise outside the brain and in a box over the cortex,
and one draw of the model's own training mix). Per copy: the scan scores, the reconstruction RMSE
over the head and the CGM Dice against the labels. ``summary.json`` says how well sigma_r predicts the
reconstruction error (Spearman; AUROC for an error at least doubled), how well sigma_s and sigma_r
predict a CGM Dice drop of more than 0.05, each score's AUROC against clean per artefact and severity,
the Dice and verdicts per variant, and each done-when target of the uncertainty issue beside its value.

The verdicts use the cut-offs shipped beside the checkpoint (``cutoffs.json``); a checkpoint without
them (a run's ``last.ckpt``) is calibrated on the validation split first, with the same corruptions,
and those cut-offs are written beside the results.

    python experiments/damage.py [--checkpoint src/hetero_qc/shipped/model.ckpt] [--profile cpu]
                                 [--whole-volume] [--no-mirror] [--calibrate] [OVERRIDE ...]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hetero_qc.evaluation.cutoffs import cutoffs_for
from hetero_qc.evaluation.damage import damage_table, damage_variants, summarise
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.paths import MODEL_DIR
from hetero_qc.qc.verdict import Cutoffs


def plot(table: pd.DataFrame, cutoffs: Cutoffs) -> plt.Figure:
    """sigma_r against the reconstruction RMSE, and sigma_s and sigma_r against the CGM Dice drop."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("recon_rmse", "sigma_r", cutoffs.sigma_r, "reconstruction RMSE over the head"),
              ("dice_drop", "sigma_s", cutoffs.sigma_s, "CGM Dice drop from the clean scan"),
              ("dice_drop", "sigma_r", cutoffs.sigma_r, "CGM Dice drop from the clean scan")]
    colours = dict(zip(table["artefact"].unique(), plt.cm.tab10.colors))
    for ax, (x, y, cut, xlabel) in zip(axes, panels):
        for artefact, rows in table.groupby("artefact", sort=False):
            ax.scatter(rows[x], rows[y], s=10, color=colours[artefact], label=artefact, alpha=0.7)
        ax.axhline(cut, color="k", ls="--", lw=0.8)
        ax.set(xlabel=xlabel, ylabel=y)
        if x == "recon_rmse":
            ax.set(xscale="log", yscale="log")
        else:
            ax.axvline(0.05, color="k", ls=":", lw=0.8)
    axes[0].legend(fontsize=7)
    figure.suptitle("Damage evaluation (test split): scan scores against the damage done; dashed: verdict cut-offs")
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/damage", str(MODEL_DIR / "model.ckpt"))
    parser.add_argument("--whole-volume", action="store_true",
                        help="predict each scan in one window instead of the model's windows (what a view of "
                             "the whole head changes, e.g. for a bias field; the cut-offs stay the model's)")
    parser.add_argument("--no-mirror", action="store_true",
                        help="segment in one pass, without averaging the left-right mirrored prediction (the "
                             "model's default; what the mirroring changes)")
    parser.add_argument("--calibrate", action="store_true",
                        help="calibrate the cut-offs on the validation split now, even where a cutoffs.json "
                             "lies beside the checkpoint (e.g. under other damage settings than it was made with)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/damage.yaml")
    args = parser.parse_args()
    model = trained(args.profile, "multitask", args.max_subjects, checkpoint=args.checkpoint)
    if args.whole_volume:
        model = model.predicting(roi_size=None)
    if args.no_mirror:
        model = model.predicting(mirror=False)
    variants = damage_variants(model, args.overrides)
    cutoffs, source = cutoffs_for(model, Path(args.checkpoint), variants, args.seed, args.calibrate)
    table = damage_table(model, model.test_scans, variants, cutoffs.sharpness, seed=args.seed + 10_000)
    summary = {"checkpoint": str(args.checkpoint), "cutoffs": cutoffs.to_dict() | {"from": str(source) if source
               else "calibrated on the validation split now"}, **summarise(table, cutoffs)}
    save_results(Path(args.out), "damage", plot(table, cutoffs), table, summary)
    if source is None:  # the cut-offs calibrated now: copied beside the checkpoint, `qc --model` and sites.py take it
        cutoffs.save(Path(args.out) / "cutoffs.json")
    targets = pd.DataFrame(summary["targets"]).T
    print(targets.to_string(), pd.DataFrame(summary["scores"]).T.to_string(),
          pd.DataFrame(summary["verdicts"]).T.fillna(0).astype(np.int64).to_string(), sep="\n\n")


if __name__ == "__main__":
    main()
