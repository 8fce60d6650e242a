"""Do the shipped model's verdicts separate clean from corrupted IXI test scans?

The test split of the shipped model, each scan clean and with the corruptions used to calibrate the
cut-offs (on the validation split): verdict counts per variant -> results/qc/. Then the same clean
scans written on other grids (1 mm isotropic, 3 mm slices along
the third or the first file axis, LPS orientation) and scored by the
QC tool itself (``hetero-qc qc``'s code path): a clean scan should not turn into "exclude" because of
its grid.

    python experiments/qc_confusion.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torchio as tio

from hetero_qc.atomic import write_atomic
from hetero_qc.data import FolderSource
from hetero_qc.demo import IXI_IMAGES
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.paths import DATA_DIR, REPO_ROOT
from hetero_qc.qc.calibrate import confusion, corruption_scores
from hetero_qc.qc.run import run_qc
from hetero_qc.qc.verdict import Cutoffs

GRIDS = {"1mm_isotropic": tio.Resample(1.0), "1x1x3mm_slices": tio.Resample((1.0, 1.0, 3.0)),
         "3x1x1mm_slices": tio.Resample((3.0, 1.0, 1.0)), "LPS_orientation": tio.ToOrientation("LPS")}


def other_grids(subjects: list[str], model_dir: Path) -> pd.DataFrame:
    """Verdicts of the QC tool on each subject's original file and on copies written on :data:`GRIDS`."""
    records = {r.subject: r for r in FolderSource(DATA_DIR / "ixi-hh-t1-2mm", **IXI_IMAGES).records()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scans"
        folder.mkdir()
        for subject in subjects:
            image = tio.ScalarImage(records[subject].image)
            image.save(folder / f"{subject}__native_2mm.nii.gz")
            for grid, transform in GRIDS.items():
                transform(image).save(folder / f"{subject}__{grid}.nii.gz")
        if run_qc([str(folder)], Path(tmp) / "qc", model_dir / "model.ckpt") != 0:
            raise RuntimeError("the QC tool failed on some of the regridded scans")
        table = pd.read_csv(Path(tmp) / "qc" / "qc.csv")
    table[["subject", "grid"]] = table["scan"].str.split("__", expand=True)
    return table


def main() -> None:
    parser = figure_parser(__doc__, "results/qc")
    parser.add_argument("--model-dir", default=str(REPO_ROOT / "models" / "default"))
    args = parser.parse_args()
    model = trained(args.profile, "multitask", args.max_subjects)
    cutoffs = Cutoffs.load(Path(args.model_dir) / "cutoffs.json")
    table = corruption_scores(model, model.test_scans, cutoffs.sharpness, seed=args.seed + 10_000)
    matrix = confusion(table, cutoffs, tuple(table["variant"].unique()))
    figure, ax = plt.subplots(figsize=(7, 3.5))
    ax.scatter(table["sigma_r"], table["sigma_s"], c=table["variant"].astype("category").cat.codes, cmap="tab10", s=12)
    ax.axvline(cutoffs.sigma_r, color="k", ls="--")
    ax.axhline(cutoffs.sigma_s, color="k", ls=":")
    ax.set(xlabel="sigma_r (visual)", ylabel="sigma_s (algorithmic)", title="Test scans and their corrupted copies")
    grids = other_grids(list(table["subject"].unique()), Path(args.model_dir))
    grid_matrix = pd.crosstab(grids["grid"], grids["verdict"])
    summary = {"confusion": matrix.to_dict(orient="index"), "cutoffs": {"sigma_r": cutoffs.sigma_r, "sigma_s": cutoffs.sigma_s},
               "n_subjects": int(table["subject"].nunique()), "other_grids": grid_matrix.to_dict(orient="index")}
    save_results(Path(args.out), "qc_confusion", figure, table, summary)
    grids = grids.drop(columns=[c for c in grids.columns if c.endswith("_map")])
    write_atomic(Path(args.out) / "other_grids.csv", lambda tmp: grids.to_csv(tmp, index=False))
    print(matrix.to_string(), grid_matrix.to_string(), sep="\n\n")


if __name__ == "__main__":
    main()
