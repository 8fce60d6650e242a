"""Does a clean scan keep its verdict on another voxel grid?

The shipped model's clean IXI test scans, each as its own file and written on other grids (1 mm
isotropic, 3 mm slices along the third or the first file axis, LPS orientation), scored by the QC
tool itself (``hetero-qc qc``'s code path): verdict counts per grid -> results/qc/. A clean scan
should not turn into "exclude" because of its grid. (The verdicts of corrupted copies are the damage
evaluation's, ``make reproduce-damage``.)

    python experiments/qc_grids.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torchio as tio

from hetero_qc.data import FolderSource
from hetero_qc.demo import IXI_IMAGES
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.paths import DATA_DIR, MODEL_DIR
from hetero_qc.qc.run import run_qc

GRIDS = {"1mm_isotropic": tio.Resample(1.0), "1x1x3mm_slices": tio.Resample((1.0, 1.0, 3.0)),
         "3x1x1mm_slices": tio.Resample((3.0, 1.0, 1.0)), "LPS_orientation": tio.ToOrientation("LPS")}


def other_grids(subjects: list[str], checkpoint: Path) -> pd.DataFrame:
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
        if run_qc([str(folder)], Path(tmp) / "qc", checkpoint) != 0:
            raise RuntimeError("the QC tool failed on some of the regridded scans")
        table = pd.read_csv(Path(tmp) / "qc" / "qc.csv")
    table[["subject", "grid"]] = table["scan"].str.split("__", expand=True)
    return table


def main() -> None:
    parser = figure_parser(__doc__, "results/qc", str(MODEL_DIR / "model.ckpt"))
    args = parser.parse_args()
    model = trained(args.profile, "multitask", args.max_subjects, checkpoint=args.checkpoint)
    grids = other_grids([scan.subject for scan in model.test_scans], Path(args.checkpoint))
    matrix = pd.crosstab(grids["grid"], grids["verdict"])
    figure, ax = plt.subplots(figsize=(7, 3.5))
    for grid, rows in grids.groupby("grid"):
        ax.scatter(rows["sigma_r"], rows["sigma_s"], s=12, label=grid)
    ax.legend(fontsize=7)
    ax.set(xlabel="sigma_r (visual)", ylabel="sigma_s (algorithmic)", title="Clean test scans on other grids")
    grids = grids.drop(columns=[c for c in grids.columns if c.endswith("_map")])
    summary = {"other_grids": matrix.to_dict(orient="index"), "n_subjects": int(grids["subject"].nunique())}
    save_results(Path(args.out), "qc_grids", figure, grids, summary)
    print(matrix.to_string())


if __name__ == "__main__":
    main()
