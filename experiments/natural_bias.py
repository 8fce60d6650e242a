"""How large a bias field do the clean IXI scans already carry, beside the simulated ones?

The damage evaluation counts a simulated bias field as damage (the reconstruction's RMSE against the
clean scan), but the clean IXI Hammersmith scans are not bias-corrected: they carry their own coil
field. Per scan, a polynomial of the simulation's order (3) is fitted by least squares to the log
intensity of the white matter (DLMUSE 81-95), where the tissue is nearly uniform, and its standard
deviation over those voxels is the scan's own smooth field (the coil's, and any anatomical trend of
the white matter's intensity, which the image cannot tell apart); then the same for the field each graded level
of ``conf/severities/graded.yaml`` adds (``log_bias_field`` of its sampled coefficients) and for the
two together. A simulated field no larger than the natural one is not identifiable as damage from
the image: the network has learnt such fields as part of clean scans.

``--n4`` also measures the scan after N4, as the preprocessing's ``n4`` corrects it
(:func:`hetero_qc.data.preprocess.n4_correct`, about 1 s per 2 mm scan): its own field, whether a
bias-corrected reference would make a simulated field stand out, and what N4 costs and gives: the
white matter's coefficient of variation and its contrast against the cortex (DLMUSE 100-207),
before and after.

    python experiments/natural_bias.py [--max-subjects N] [--n4] [--out results/bias]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import torch

from hetero_qc.config import severities
from hetero_qc.corruption.bias_field import log_bias_field, number_of_terms
from hetero_qc.data.preprocess import CGM_LABELS, n4_correct
from hetero_qc.evaluation.experiment import save_results
from hetero_qc.paths import DATA_DIR

IXI = DATA_DIR / "ixi-hh-t1-2mm"
WHITE_MATTER = range(81, 96)  # DLMUSE lobar white matter (data/ixi-hh-t1-2mm/README.md)
ORDER = 3  # the simulated fields' polynomial order


def fitted_field_sd(log_image: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation over ``mask`` of the order-:data:`ORDER` polynomial fitted to ``log_image``
    there, in the simulated field's own basis (each monomial is ``log_bias_field`` of one unit
    coefficient, so coordinates and terms are the simulation's)."""
    units = torch.eye(number_of_terms(ORDER), dtype=torch.float64)
    design = log_bias_field(units, log_image.shape).numpy()[:, mask].T  # (voxels, terms)
    coefficients, *_ = np.linalg.lstsq(design, log_image[mask], rcond=None)
    return float((design @ coefficients).std())


def tissue_statistics(image: np.ndarray, wm: np.ndarray, cortex: np.ndarray) -> tuple[float, float]:
    """The white matter's coefficient of variation, and its mean over the cortex's."""
    return float(image[wm].std() / image[wm].mean()), float(image[wm].mean() / image[cortex].mean())


def log_positive(image: np.ndarray) -> np.ndarray:
    return np.log(np.where(image > 0, image, 1.0))


def collect(max_subjects: int | None, n4: bool = False, seed: int = 0) -> pd.DataFrame:
    levels = severities()["bias_field"]
    rows = []
    for index, path in enumerate(sorted((IXI / "t1").glob("*_T1w.nii.gz"))[:max_subjects]):
        subject = path.name.removesuffix("_T1w.nii.gz")
        image = np.asarray(nib.load(path).dataobj, dtype=np.float64)
        labels = np.asarray(nib.load(IXI / "labels" / f"{subject}_dlmuse.nii.gz").dataobj)
        wm = np.isin(labels, list(WHITE_MATTER)) & (image > 0)
        log_image = log_positive(image)
        row = {"subject": subject, "natural": fitted_field_sd(log_image, wm)}
        if n4:
            corrected = n4_correct(torch.from_numpy(image)[None])[0].numpy()
            row["natural_after_n4"] = fitted_field_sd(log_positive(corrected), wm & (corrected > 0))
            cortex = (labels >= CGM_LABELS[0]) & (labels <= CGM_LABELS[1])
            row["wm_cv"], row["wm_over_cortex"] = tissue_statistics(image, wm, cortex)
            row["wm_cv_after_n4"], row["wm_over_cortex_after_n4"] = tissue_statistics(corrected, wm, cortex)
        batch = torch.from_numpy(image).float()[None, None]
        for name, artefact in levels.items():
            params = artefact.sample(batch, torch.Generator().manual_seed(seed + index))
            added = log_bias_field(params.coefficients.double(), image.shape)[0].numpy()
            row[f"added_{name}"] = float(added[wm].std())
            row[f"with_{name}"] = fitted_field_sd(log_image + added, wm)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-subjects", type=int, default=None, help="the first N scans (default: all 164)")
    parser.add_argument("--n4", action="store_true", help="also the scans after N4 (the preprocessing's n4)")
    parser.add_argument("--out", default="results/bias")
    args = parser.parse_args()
    table = collect(args.max_subjects, args.n4)
    tissue = [c for c in table.columns if c.startswith("wm_")]
    columns = [c for c in table.columns if c != "subject" and c not in tissue]
    summary = {"n_scans": len(table), "median_log_field_sd": {c: float(table[c].median()) for c in columns},
               "median_tissue": {c: float(table[c].median()) for c in tissue},
               "share_added_below_natural": {c.removeprefix("added_"): float((table[c] <= table["natural"]).mean())
                                             for c in columns if c.startswith("added_")}}
    figure, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([table[c] for c in columns], tick_labels=columns)
    ax.set(ylabel="sd of the fitted log field over white matter",
           title="Bias fields: the clean IXI scans' own, the simulated ones, and both")
    save_results(Path(args.out), "natural_bias", figure, table, summary)
    print(pd.Series({**summary["median_log_field_sd"], **summary["median_tissue"]}).round(3).to_string())
    print("share of scans whose natural field is at least the added one:", summary["share_added_below_natural"])


if __name__ == "__main__":
    main()
