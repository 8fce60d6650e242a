"""Throwaway (stop 43): looks_skull_stripped on every embedded IXI scan, every other-site scan and the MNI template."""
import glob, torch
torch.set_num_threads(1)
from pathlib import Path
from hetero_qc.data import ScanRecord, preprocess
from hetero_qc.inference import load_model
from hetero_qc.qc.scoring import looks_skull_stripped
import numpy as np
m = load_model("src/hetero_qc/shipped/model.ckpt")
groups = {"ixi": sorted(glob.glob("data/ixi-hh-t1-2mm/t1/*.nii.gz")),
          "nichart": sorted(glob.glob("../shared/data/other-sites/nichart-demo23/t1/*.nii.gz")),
          "single": sorted(glob.glob("../shared/data/other-sites/single/*.nii.gz")) + ["data/demo/MNI152_2mm.nii.gz"]}
for g, paths in groups.items():
    flagged, vols = [], []
    for p in paths:
        s = preprocess(ScanRecord(Path(p).name, Path(p)), m.preprocessing)
        vols.append(float(s.head.sum()) * np.prod(s.spacing) / 1e6)
        if looks_skull_stripped(s):
            flagged.append(Path(p).name)
    print(g, len(paths), "scans; head", f"{min(vols):.2f}-{max(vols):.2f} L; detected stripped:", flagged, flush=True)
