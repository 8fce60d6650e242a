"""Throwaway (stop 46): the preprocessed intensities a fixed-norm network meets on NiChart against IXI:
per scan, medians of the cortex (CGM label), of the rest of the brain (label minus cortex: mostly white
matter), of the head outside the brain, and the cortex's spread, after the shipped preprocessing
(N4, white matter at tissue_level 0.64). Usage: python results/sites/throwaway_stop46/intensity.py CKPT"""
import sys
from pathlib import Path
import torch
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.experiment import trained

m = trained("long", "multitask", 8, checkpoint=sys.argv[1])
data = Path("../shared/data/other-sites/nichart-demo23")
records = FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()
nichart = [preprocess(r, m.model.preprocessing) for r in records if 6 <= int(r.subject.removeprefix("Subj")) <= 13]
for name, scans in (("IXI val", m.val_scans), ("NiChart 6-13", nichart)):
    for s in scans:
        x, cgm, brain, head = s.image[0], s.cgm[0], s.brain[0], s.head[0]
        rest = brain & ~cgm
        q = lambda v: torch.quantile(v[torch.randperm(len(v))[:100000]], torch.tensor([0.1, 0.5, 0.9])).tolist()
        print(f"{name:12s} {s.subject:24s} cortex {q(x[cgm])[1]:.3f} (10-90% {q(x[cgm])[0]:.3f}-{q(x[cgm])[2]:.3f}) "
              f"brain-not-cortex {q(x[rest])[1]:.3f} head-not-brain {q(x[head & ~brain])[1]:.3f} "
              f"cortex/WM {q(x[cgm])[1] / q(x[rest])[1]:.2f} brain litres {float(brain.sum()) * 8e-6:.2f} "
              f"cortex share {float(cgm.sum() / brain.sum()):.2f}")
