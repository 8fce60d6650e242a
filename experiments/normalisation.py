"""Can one corruption move the whole scan's intensities through the normalisation?

A user's corrupted scan meets the preprocessing's intensity scaling before the network sees it: the
percentiles, then an anchor that sets the scale. An anchor that the corruption moves rescales every
voxel, the undamaged ones too, and the network reads that as damage everywhere (under noise outside
the brain the head's median put the brain at half its clean intensity). Per validation scan, clean
and under every corruption of ``conf/damage.yaml`` (made on the clean scan's scale as the damage
evaluation makes them, then N4 if the model has it and the percentiles), per anchor: the median over
the brain (where the clean scan is above 0.2) of the copy's intensity over the clean scan's, each
divided by its own anchor. 1 is a scale the corruption did not move; whole-scan Rician noise raises
the magnitude itself (by about 10% at 5 dB), so no anchor keeps 1 there.

Anchors: the percentiles alone, the head's median (``head_median``), and the smooth tissue's median
(``tissue_level``, :func:`~hetero_qc.data.preprocess.smooth_tissue`) at several fractions.
``summary.json`` also gives, on the clean scans, the smooth tissue's median over the head's, whose
mean times 0.5 is the ``tissue_level`` that keeps clean scans where ``head_median: 0.5`` put them.

    python experiments/normalisation.py [--checkpoint src/hetero_qc/shipped/model.ckpt] [--max-subjects 8]
                                        [OVERRIDE ...]
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from hetero_qc.data import Preprocessing
from hetero_qc.data.preprocess import n4_correct, scale_intensity, smooth_tissue
from hetero_qc.evaluation.damage import damage_variants, variant_name
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.paths import MODEL_DIR

FRACTIONS = (0.05, 0.1, 0.03)  # smooth_fraction: the preprocessing's default first
BRIGHT = 0.2  # brain voxels brighter than this in the clean scan are compared


def anchored(settings: Preprocessing) -> dict[str, Preprocessing]:
    """``settings`` under every anchor (the tissue levels are arbitrary here: a ratio ignores them)."""
    plain = replace(settings, head_median=None, tissue_level=None, n4=False)  # N4 once per copy, in main()
    return {"percentiles": plain, "head_median": replace(plain, head_median=0.5),
            **{f"smooth_tissue_{f:g}": replace(plain, tissue_level=0.5, smooth_fraction=f) for f in FRACTIONS}}


def plot(table: pd.DataFrame) -> plt.Figure:
    """Per anchor, the brain's intensity ratio (copy over clean) of every corrupted copy."""
    corrupted = table[table["variant"] != "clean"]
    names = list(corrupted["anchor"].unique())
    variants = list(corrupted["variant"].unique())
    figure, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        rows = corrupted[corrupted["anchor"] == name]
        ax.boxplot([rows.loc[rows["variant"] == v, "brain_ratio"] for v in variants],
                   positions=np.arange(len(variants)) + (i - (len(names) - 1) / 2) * width, widths=width * 0.9,
                   patch_artist=True, boxprops={"facecolor": plt.cm.tab10.colors[i]}, showfliers=False)
        ax.plot([], [], color=plt.cm.tab10.colors[i], lw=6, label=name)
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(variants)), variants, rotation=35, ha="right", fontsize=8)
    ax.set(ylabel="brain intensity, copy / clean", yscale="log")
    ax.legend(fontsize=8)
    figure.suptitle("What one corruption does to the whole scan's scale, per intensity anchor (validation)")
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/normalisation", str(MODEL_DIR / "model.ckpt"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/damage.yaml")
    args = parser.parse_args()
    model = trained(args.profile, "multitask", args.max_subjects, checkpoint=args.checkpoint)
    settings = anchored(model.model.preprocessing)
    variants = damage_variants(model, ["preprocess_copies=false", "training_mix=false", *args.overrides])
    rows = []
    for index, scan in enumerate(model.val_scans):
        clean = scan.image[None]
        generator = torch.Generator().manual_seed(args.seed + index)
        copies = {"clean": clean}
        for artefact, levels in variants.items():
            for severity, transform in levels.items():
                copies[variant_name(artefact, severity)] = transform(clean, scan.spacing, generator, scan.brain[None]).image
        if model.model.preprocessing.n4:
            copies = {variant: n4_correct(copy[0].cpu())[None] for variant, copy in copies.items()}
        for name, anchor in settings.items():
            reference = None
            for variant, copy in copies.items():
                image, head = scale_intensity(copy[0].cpu(), anchor)
                if reference is None:
                    reference = image
                    compared = scan.brain & (image > BRIGHT)
                ratio = float((image[compared] / reference[compared]).median())
                row = {"subject": scan.subject, "variant": variant, "anchor": name, "brain_ratio": ratio}
                if name == "percentiles" and variant == "clean":  # the anchors' values on the clean scan
                    row |= {"head_median": float(image[head].median()), "smooth_tissue": float(
                        image[smooth_tissue(image, head, anchor.head_threshold, FRACTIONS[0])].median())}
                rows.append(row)
    table = pd.DataFrame(rows)
    spread = table.groupby(["variant", "anchor"], sort=False)["brain_ratio"].agg(["median", "min", "max"])
    clean = table[(table["variant"] == "clean") & (table["anchor"] == "percentiles")]
    level = clean["smooth_tissue"] / clean["head_median"]
    summary = {
        "checkpoint": str(args.checkpoint), "n_subjects": len(model.val_scans), "split": "validation",
        "brain_ratio": {v: {a: spread.loc[(v, a)].round(4).to_dict() for a in table["anchor"].unique()}
                        for v in table["variant"].unique() if v != "clean"},
        "clean_smooth_tissue_over_head_median": {"mean": float(level.mean()), "sd": float(level.std())},
        "tissue_level_for_head_median_0.5": round(0.5 * float(level.mean()), 3),
    }
    save_results(Path(args.out), "normalisation", plot(table), table, summary)
    print(spread["median"].unstack().round(3).to_string(), f"\nclean smooth tissue / head median: "
          f"{level.mean():.3f} +- {level.std():.3f}; tissue_level {summary['tissue_level_for_head_median_0.5']}")


if __name__ == "__main__":
    main()
