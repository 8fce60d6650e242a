"""Throwaway (stop 46): is the fixed-norm model's NiChart gap an intensity-scale gap? NiChart's cortex
sits at 0.38-0.43 after preprocessing against IXI's 0.48-0.51 (intensity_output.txt). CGM Dice on
NiChart Subj6-13 with the preprocessed image multiplied by each factor (no training).
Usage: python results/sites/throwaway_stop46/scale.py CKPT FACTOR [FACTOR ...]"""
import sys
from pathlib import Path
import torch
torch.set_num_threads(2)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_table
from hetero_qc.evaluation.experiment import trained

m = trained("long", "multitask", 4, checkpoint=sys.argv[1])
data = Path("../shared/data/other-sites/nichart-demo23")
records = FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()
nichart = [preprocess(r, m.model.preprocessing) for r in records if 6 <= int(r.subject.removeprefix("Subj")) <= 13]
print("checkpoint", sys.argv[1], flush=True)
for f in map(float, sys.argv[2:]):
    t = damage_table(m, [s._replace(image=s.image * f) for s in nichart], {}, (0.0, 0.0, 0.0))
    print(f"x{f:.2f}: NiChart Subj6-13 CGM Dice {t.dice.mean():.3f}, sigma_s median {t.sigma_s.median():.3f}, "
          f"sigma_r median {t.sigma_r.median():.3f}", flush=True)
