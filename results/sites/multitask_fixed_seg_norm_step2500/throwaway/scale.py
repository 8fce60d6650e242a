"""Throwaway (stop 42): the intensity of white matter and cortex in the preprocessed scans (the network's input
scale), NiChart Subj6-13 against 4 IXI test scans, from the labels (DLMUSE: WM 81-95, CGM 100-207)."""
from pathlib import Path
import numpy as np, torch
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.experiment import trained
model = trained("long", "multitask", 4, checkpoint="results/damage/multitask_fixed_seg_norm_step2500/model.ckpt")
settings = model.model.preprocessing
data = Path("/work/shared/data/other-sites/nichart-demo23")
scans = [preprocess(r, settings) for r in FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w",
                                                         "labels/{subject}_dlmuse.nii.gz").records()]
scans.sort(key=lambda s: int(s.subject.removeprefix("Subj")))
for s in model.test_scans[:4] + scans[5:13]:
    x = s.image[0]; cgm = s.cgm[0].bool(); brain = s.brain[0].bool(); head = s.head[0].bool()
    wm_ish = brain & ~cgm
    print(f"{s.subject:16s} cgm median {x[cgm].median():.3f}  brain-non-cgm median {x[wm_ish].median():.3f}  p99 head {x[head].quantile(0.99):.3f}  brain share of head {brain.sum()/head.sum():.2f}")
