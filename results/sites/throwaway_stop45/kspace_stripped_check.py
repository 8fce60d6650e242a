# Made by: python results/sites/throwaway_stop45/kspace_stripped_check.py (from the repository root) with kspace_downsample.diff applied
from pathlib import Path
import torch, numpy as np
torch.set_num_threads(1)
from hetero_qc.data import FolderSource, MniSource, Preprocessing, preprocess
from hetero_qc.qc.scoring import looks_skull_stripped, axis_blur
import json
cut = json.load(open("src/hetero_qc/shipped/cutoffs.json"))
recs = FolderSource(Path("../shared/data/other-sites/single"), "*.nii.gz", r"(?P<subject>.+)_T1w").records() + MniSource().records()
for r in recs:
    for d in ("linear", "kspace"):
        s = preprocess(r, Preprocessing(n4=True, tissue_level=0.64, downsample=d))
        litres = float(s.head.sum()) * 8 / 1e6
        bg = [round(float((s.image[~s.head] > t).float().mean()), 3) for t in (0, 0.005, 0.01, 0.02, 0.05)]
        print(f"{r.subject:20s} {d:7s} stripped={looks_skull_stripped(s)} litres={litres:.2f} background>t={bg} blur={axis_blur(s.image[0], s.head[0], tuple(cut['sharpness'])):.3f}")
