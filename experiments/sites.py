"""Scans from other sites and scanners: does the model hold beyond IXI Hammersmith?

Reads ``../shared/data/other-sites/`` in place (never copied: other licences; see its README): 23
NiChart subjects with DLMUSE labels (2 mm) and four single scans from other scanners (1 mm, 1 x 1 x
3 mm, 2 x 2 x 3 mm, one skull-stripped). Every one is a clean research scan, so every verdict but
``ok`` is a false alarm. ``summary.json`` holds:

- the share of these clean scans flagged, overall and per group, and beside them the IXI test scans
  skull-stripped as training strips them (``ixi_test_stripped``: a site that sends stripped scans,
  judged with the cut-offs for skull-stripped scans, :meth:`~hetero_qc.qc.verdict.Cutoffs.for_scan`);
- the CGM Dice of the labelled subjects against that of the IXI test scans;
- sigma_r and sigma_s quartiles beside the IXI test scans';
- the damage evaluation (``conf/damage.yaml``, the same corruptions as on IXI) of the labelled
  subjects, to show whether detection still works there.

The last ``--held-out`` labelled subjects (default 3) are kept apart for a final check: reported on
their own, left out of every pooled number, so that choices are not tuned on them.

``site_calibrated`` answers how the calibration handles a new site: the first ``--site-reference``
labelled subjects (default 5) play a site's own clean scans, the cut-offs are moved there
(:meth:`~hetero_qc.qc.verdict.Cutoffs.for_site`, as ``hetero-qc calibrate-site`` does), and the other
labelled subjects, clean and corrupted, and the held-out ones are judged with them. The single scans
come from four scanners, one scan each: no site of theirs has scans to calibrate on.
``as_a_user_would`` pools the clean other-site scans as a user meets them: the labelled ones (all
but the site reference) under their site's cut-offs, the single scans under IXI's, with the share
flagged, and the same without the thick-slice scans (:func:`~hetero_qc.qc.scoring.thick_slices`), which
the tool may call blurred.

    python experiments/sites.py [--checkpoint src/hetero_qc/shipped/model.ckpt] [--data DIR] [--site-reference N]
                                [--no-mirror] [OVERRIDE ...]
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd

from hetero_qc.data import FolderSource, preprocess
from hetero_qc.data.augmentation import skull_strip
from hetero_qc.evaluation.damage import damage_table, damage_variants, judged, site_cutoffs, summarise, verdicts
from hetero_qc.evaluation.experiment import Trained, figure_parser, save_results, trained
from hetero_qc.paths import MODEL_DIR, REPO_ROOT
from hetero_qc.qc.scoring import thick_slices
from hetero_qc.qc.verdict import OK, SCORED, Cutoffs

OTHER_SITES = REPO_ROOT.parent / "shared" / "data" / "other-sites"


def quartiles(values: pd.Series) -> list[float]:
    return [float(v) for v in np.nanquantile(values.to_numpy(float), [0.25, 0.5, 0.75])]


def clean_summary(table: pd.DataFrame) -> dict:
    """Flag share, Dice and score quartiles of the clean rows of a damage table (with ``verdict``)."""
    clean = table[table["variant"] == "clean"]
    return {"n_scans": int(len(clean)), "n_flagged": int((clean["verdict"] != OK).sum()),
            "flagged": float((clean["verdict"] != OK).mean()),
            "verdicts": clean["verdict"].value_counts().to_dict(), "dice_mean": float(clean["dice"].mean()),
            "sigma_r_quartiles": quartiles(clean["sigma_r"]), "sigma_s_quartiles": quartiles(clean["sigma_s"])}


def measured_reference(cutoffs: Cutoffs, model: Trained) -> Cutoffs:
    """``cutoffs`` with their clean reference, measured on the clean validation scans where cut-offs
    written before it existed lack one (the medians :func:`~hetero_qc.evaluation.cutoffs.calibrate_cutoffs` now stores)."""
    if cutoffs.reference:
        return cutoffs
    clean = damage_table(model, model.val_scans, {}, cutoffs.sharpness)
    return replace(cutoffs, reference={key: float(clean[key].median()) for key in SCORED})


def site_calibrated(reference: pd.DataFrame, tables: dict[str, pd.DataFrame], cutoffs: Cutoffs) -> tuple[Cutoffs, dict]:
    """The cut-offs moved to the site of ``reference`` (a damage table of clean scans), and ``tables``
    judged under them: blur against the site's profile, verdicts, and their summaries."""
    moved = site_cutoffs(cutoffs, reference, "NiChart")
    summary = {"reference_subjects": reference["subject"].tolist(), "cutoffs": moved.to_dict()}
    for name, table in tables.items():
        table = judged(table, moved)
        summary[name] = clean_summary(table)
        if (table["variant"] != "clean").any():
            summary[f"damage_{name}"] = summarise(table, moved)
    return moved, summary


def as_a_user_would(calibrated: dict, single: pd.DataFrame, thick: list[str]) -> dict:
    """The clean other-site scans judged as a user would: the labelled ones with the cut-offs moved to
    their site (``calibrated``, :func:`site_calibrated`'s summary), the single scans (``single``, a
    damage table with ``verdict``; one per scanner, so nothing to move the cut-offs by) with IXI's.
    ``thick``: the single scans with thick slices."""
    clean = single[single["variant"] == "clean"]
    flagged_single = clean.loc[clean["verdict"] != OK, "subject"].tolist()
    counts = [(calibrated[name]["n_scans"], calibrated[name]["n_flagged"])
              for name in ("nichart", "nichart_held_out")] + [(len(clean), len(flagged_single))]
    scans, flagged = (sum(c) for c in zip(*counts))
    thick_flagged = len(set(thick) & set(flagged_single))
    return {"n_scans": scans, "flagged": flagged, "flagged_share": flagged / scans,
            "thick_slice_scans": thick, "flagged_share_without_thick_slices":
                (flagged - thick_flagged) / (scans - len(thick))}


def plot(groups: dict[str, pd.DataFrame], cutoffs: Cutoffs) -> plt.Figure:
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    names = list(groups)
    for ax, (column, cut) in zip(axes, (("sigma_r", cutoffs.sigma_r), ("sigma_s", cutoffs.sigma_s), ("dice", None))):
        data = [groups[n].loc[groups[n]["variant"] == "clean", column].dropna() for n in names]
        ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.plot(np.full(len(values), i), values, ".", color="k", alpha=0.5, ms=4)
        if cut is not None:
            ax.axhline(cut, color="k", ls="--", lw=0.8)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set_title(f"{column} of clean scans" + (" (dashed: cut-off)" if cut is not None else ""))
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/sites", str(MODEL_DIR / "model.ckpt"))
    parser.add_argument("--data", default=str(OTHER_SITES), help=f"the other-sites folder (default {OTHER_SITES})")
    parser.add_argument("--held-out", type=int, default=3, help="labelled subjects kept for a final check (the last N)")
    parser.add_argument("--site-reference", type=int, default=5,
                        help="labelled subjects whose clean scans move the cut-offs to the site (the first N)")
    parser.add_argument("--no-mirror", action="store_true",
                        help="segment in one pass, without averaging the left-right mirrored prediction (the "
                             "model's default; what the mirroring changes)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/damage.yaml")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "nichart-demo23").is_dir():
        parser.error(f"{data}: no nichart-demo23/ here; point --data at the other-sites folder (its README)")
    cutoffs_file = Path(args.checkpoint).parent / "cutoffs.json"
    if not cutoffs_file.exists():
        parser.error(f"{cutoffs_file}: the checkpoint needs its verdict cut-offs beside it (hetero-qc ship-model)")
    cutoffs = Cutoffs.load(cutoffs_file)
    model = trained(args.profile, "multitask", args.max_subjects, checkpoint=args.checkpoint)
    if args.no_mirror:
        model = model.predicting(mirror=False)
    settings = model.model.preprocessing
    labelled = [preprocess(r, settings) for r in FolderSource(
        data / "nichart-demo23", "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()]
    labelled.sort(key=lambda scan: int(scan.subject.removeprefix("Subj")))
    tuning, held_out = labelled[: len(labelled) - args.held_out], labelled[len(labelled) - args.held_out:]
    single_records = FolderSource(data / "single", "*.nii.gz", r"(?P<subject>.+)_T1w").records()
    single = [preprocess(r, settings) for r in single_records]
    thick = [r.subject for r in single_records if thick_slices(nib.load(r.image).header.get_zooms()[:3], (settings.spacing,))]
    variants = damage_variants(model, args.overrides)
    tables = {"ixi_test": damage_table(model, model.test_scans, {}, cutoffs.sharpness),
              "ixi_test_stripped": damage_table(model, [skull_strip(s) for s in model.test_scans], {}, cutoffs.sharpness),
              "nichart": damage_table(model, tuning, variants, cutoffs.sharpness, seed=args.seed + 20_000),
              "nichart_held_out": damage_table(model, held_out, {}, cutoffs.sharpness),
              "single": damage_table(model, single, {}, cutoffs.sharpness)}
    for name, table in tables.items():
        table.insert(0, "group", name)
        table["verdict"] = verdicts(table, cutoffs)
    nichart = tables["nichart"]
    in_reference = nichart["subject"].isin([scan.subject for scan in tuning[: args.site_reference]])
    _, calibrated = site_calibrated(nichart[in_reference & (nichart["variant"] == "clean")],
                                    {"nichart": nichart[~in_reference], "nichart_held_out": tables["nichart_held_out"]},
                                    measured_reference(cutoffs, model))
    other = pd.concat([tables["nichart"], tables["single"]])
    summary = {
        "checkpoint": str(args.checkpoint), "data": str(data),
        "flagged_other_sites": float((other.loc[other["variant"] == "clean", "verdict"] != OK).mean()),
        "by_group": {name: clean_summary(table) for name, table in tables.items()},
        "single_verdicts": tables["single"].set_index("subject")["verdict"].to_dict(),
        "damage_nichart": summarise(tables["nichart"], cutoffs),
        "site_calibrated": calibrated,
        "as_a_user_would": as_a_user_would(calibrated, tables["single"], thick),
    }
    save_results(Path(args.out), "sites", plot(tables, cutoffs), pd.concat(tables.values()), summary)
    print(pd.DataFrame({k: {f: v[f] for f in ("n_scans", "flagged", "dice_mean")} for k, v in summary["by_group"].items()}).T)
    print(pd.DataFrame(summary["damage_nichart"]["targets"]).T.to_string())
    print("cut-offs moved to NiChart by", len(calibrated["reference_subjects"]), "clean scans:",
          {name: calibrated[name]["flagged"] for name in ("nichart", "nichart_held_out")}, "flagged")
    user = summary["as_a_user_would"]
    print(f"as a user would (NiChart with its own cut-offs, single scans with IXI's): {user['flagged']} of "
          f"{user['n_scans']} flagged; {user['flagged_share_without_thick_slices']:.0%} without the thick-slice "
          f"scans {user['thick_slice_scans']}")
    if "damage_nichart" in calibrated:
        print(pd.DataFrame(calibrated["damage_nichart"]["targets"]).T.to_string())


if __name__ == "__main__":
    main()
