"""Which scan statistic of the sigma_s map should the verdict cut? Every candidate, judged side by side.

No inference: it reads the tables the damage and sites evaluations and ``make model`` wrote, whose
copies carry the candidates (``damage.SCORES``): ``sigma_s`` as the current scores version defines it,
``sigma_s_band``, ``sigma_s_head``, ``sigma_s_cortex`` (tables of version 4 had the band as
``sigma_s`` and today's as ``sigma_s_soft``); one missing from a table is left out. For each
candidate it puts that column in ``sigma_s``, calibrates the cut-offs on the validation table exactly as ``make model`` does
(:func:`~hetero_qc.evaluation.cutoffs.calibrate_cutoffs`), and reports:

- the AUROC for a CGM Dice drop of more than 0.05 on validation and on test, and on test without the
  copies of noise outside the brain (their drops sit at the 0.05 threshold);
- on test, the verdicts of the clean scans and of the noise outside the brain (at its edge, 10 mm out);
- on the other sites, with the IXI cut-offs: the share of clean scans flagged per group, and each
  group's median against IXI's clean test median; with the cut-offs moved to NiChart by its first 5
  clean scans (as ``experiments/sites.py``): the share of the other NiChart scans and of the held-out
  ones flagged.

    python experiments/sigma_s_choice.py --validation src/hetero_qc/shipped/validation_scores.csv \\
        --damage results/damage/RUN/damage.csv --sites results/sites/RUN/sites.csv --out results/sigma_s_choice/RUN
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from hetero_qc.atomic import write_atomic
from hetero_qc.evaluation.cutoffs import calibrate_cutoffs
from hetero_qc.evaluation.damage import judged, site_cutoffs, verdicts
from hetero_qc.evaluation.stats import auroc_mann_whitney
from hetero_qc.qc.verdict import OK

CANDIDATES = ("sigma_s", "sigma_s_soft", "sigma_s_band", "sigma_s_head", "sigma_s_cortex")  # soft: sigma_s before version 5
OUTSIDE_BRAIN = "partial_noise_outside_brain"  # the variants of noise outside the brain (its edge, 10 mm out)
SITE_REFERENCE = 5  # NiChart's first clean scans that move the cut-offs there (experiments/sites.py)


def as_sigma_s(table: pd.DataFrame, candidate: str) -> pd.DataFrame:
    """``table`` with ``candidate`` in the ``sigma_s`` column the verdicts read."""
    return table.assign(sigma_s=table[candidate])


def auroc_dice_drop(table: pd.DataFrame) -> float:
    damaged = table["damaged"].astype(bool)
    return float(auroc_mann_whitney(table.loc[damaged, "sigma_s"].to_numpy(), table.loc[~damaged, "sigma_s"].to_numpy())[0])


def kept(table: pd.DataFrame, cutoffs, variant: str) -> str:
    rows = table[table["variant"] == variant]
    return f"{int((verdicts(rows, cutoffs) != 'exclude').sum())} of {len(rows)}"


def judge(candidate: str, validation: pd.DataFrame, damage: pd.DataFrame, sites: pd.DataFrame,
          profile: tuple[float, float, float]) -> dict:
    """The cut-offs calibrated on ``candidate`` and what they do on test and on the other sites."""
    validation, damage, sites = (as_sigma_s(t, candidate) for t in (validation, damage, sites))
    cutoffs = calibrate_cutoffs(validation, profile)
    clean = sites[sites["variant"] == "clean"]
    ixi_median = float(clean.loc[clean["group"] == "ixi_test", "sigma_s"].median())
    nichart = clean[clean["group"] == "nichart"]
    reference = nichart[nichart["subject"].isin([f"Subj{i}" for i in range(1, SITE_REFERENCE + 1)])]
    moved = site_cutoffs(cutoffs, reference, "NiChart")

    def flagged_moved(rows: pd.DataFrame) -> float:
        return float((judged(rows, moved)["verdict"] != OK).mean())

    return {
        "cutoff": cutoffs.sigma_s, "reference": cutoffs.reference["sigma_s"],
        "auroc_dice_drop_validation": auroc_dice_drop(validation),
        "auroc_dice_drop_test": auroc_dice_drop(damage),
        # the same without the noise outside the brain, whose Dice drops sit at the damage threshold
        # (0.04-0.06 medians): what is left of a fall in the AUROC is the score's own
        "auroc_dice_drop_test_without_outside_brain": auroc_dice_drop(
            damage[~damage["variant"].astype(str).str.startswith(OUTSIDE_BRAIN)]),
        "test_kept": {v: kept(damage, cutoffs, v) for v in
                      ("clean", "partial_noise_outside_brain", "partial_noise_outside_brain_10mm")},
        "sites_flagged_ixi_cutoffs": {g: float((verdicts(rows, cutoffs) != OK).mean()) for g, rows in clean.groupby("group")},
        "sites_excluded_ixi_cutoffs": {g: float((verdicts(rows, cutoffs) == "exclude").mean()) for g, rows in clean.groupby("group")},
        "sites_median_over_ixi": {g: float(rows["sigma_s"].median() / ixi_median) for g, rows in clean.groupby("group")},
        "single_over_ixi": (clean[clean["group"] == "single"].set_index("subject")["sigma_s"] / ixi_median).to_dict(),
        "sites_flagged_moved_cutoffs": {"nichart_others": flagged_moved(nichart[~nichart.index.isin(reference.index)]),
                                        "nichart_held_out": flagged_moved(clean[clean["group"] == "nichart_held_out"])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--damage", type=Path, required=True)
    parser.add_argument("--sites", type=Path, required=True)
    parser.add_argument("--cutoffs", type=Path, default=None,
                        help="the sharpness profile's source (default: cutoffs.json beside --validation)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cutoffs = args.cutoffs or args.validation.parent / "cutoffs.json"
    for path in (args.validation, args.damage, args.sites, cutoffs):
        if not path.is_file():
            parser.error(f"{path}: no such file")
    profile = tuple(json.loads(cutoffs.read_text())["sharpness"])
    tables = [pd.read_csv(path) for path in (args.validation, args.damage, args.sites)]
    missing = [name for name, t in zip(("validation", "damage", "sites"), tables) if "sigma_s" not in t or "damaged" not in t]
    if missing:
        parser.error(f"not a damage or sites table (no sigma_s or damaged column): {', '.join(missing)}")
    summary = {"inputs": {k: str(getattr(args, k)) for k in ("validation", "damage", "sites")},
               "candidates": {c: judge(c, *tables, profile) for c in CANDIDATES if all(c in t for t in tables)}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    rows = {c: {"val AUROC": r["auroc_dice_drop_validation"], "test AUROC": r["auroc_dice_drop_test"],
                "test AUROC, no outside-brain noise": r["auroc_dice_drop_test_without_outside_brain"],
                **{f"test kept {k.removeprefix('partial_noise_')}": v for k, v in r["test_kept"].items()},
                **{f"flagged {g}": v for g, v in r["sites_flagged_ixi_cutoffs"].items()},
                **{f"moved: flagged {g}": v for g, v in r["sites_flagged_moved_cutoffs"].items()},
                **{f"{g}/IXI": v for g, v in r["sites_median_over_ixi"].items() if g != "ixi_test"}}
            for c, r in summary["candidates"].items()}
    print(pd.DataFrame(rows).round(3).to_string())


if __name__ == "__main__":
    main()
