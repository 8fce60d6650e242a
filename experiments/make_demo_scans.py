"""Write the bundled demo scans of `make demo` into data/demo/ (run once; the outputs are committed).

A clean IXI test scan (test split of the shipped model: seed 0), the same scan with simulated motion,
the same with noise outside the brain, and nilearn's MNI152 template at 2 mm: all on their native
grids, as a user's files would be.

    python experiments/make_demo_scans.py
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn import datasets

from hetero_qc.cli import main as cli
from hetero_qc.data import FolderSource, split_subjects
from hetero_qc.demo import IXI_IMAGES
from hetero_qc.paths import DATA_DIR

OUT = DATA_DIR / "demo"


def main() -> None:
    records = {r.subject: r for r in FolderSource(DATA_DIR / "ixi-hh-t1-2mm", **IXI_IMAGES).records()}
    subject = split_subjects(list(records), (0.8, 0.1, 0.1), seed=0)["test"][0]
    record = records[subject]
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(record.image, OUT / f"{subject}_clean.nii.gz")
    cli(["corrupt", str(record.image), str(OUT / f"{subject}_motion.nii.gz"), "--artefact", "motion",
         "--set", "degrees=[6,8]", "--set", "translation=[6,8]", "--seed", "0"])
    labels = nib.load(record.label)
    with tempfile.TemporaryDirectory() as tmp:
        brain = Path(tmp) / "brain.nii.gz"
        nib.save(nib.Nifti1Image((np.asarray(labels.dataobj) > 0).astype(np.uint8), labels.affine), brain)
        cli(["corrupt", str(record.image), str(OUT / f"{subject}_partial_noise.nii.gz"), "--artefact",
             "partial_noise", "--set", "region=outside_mask", "--set", "snr_db=-5", "--mask", str(brain)])
    nib.save(datasets.load_mni152_template(resolution=2), OUT / "MNI152_2mm.nii.gz")
    (OUT / "README.md").write_text(
        "# Demo scans for `make demo`\n\nMade by `python experiments/make_demo_scans.py`: "
        f"IXI subject {subject} (test split, CC BY-SA 3.0; see ../ixi-hh-t1-2mm/README.md) clean, with simulated "
        "motion (6-8 degrees, 6-8 mm), and with Rician noise at -5 dB outside the brain; and nilearn's MNI152 "
        "T1 template at 2 mm (ICBM 2009, see nilearn's licence notes).\n")


if __name__ == "__main__":
    main()
