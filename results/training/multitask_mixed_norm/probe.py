"""Throwaway probe (stop 44): a checkpoint's CGM Dice on NiChart Subj6-13 (neither site reference nor held
out; clean) and on the first 4 IXI test scans clean and with noise outside the brain (edge; 10 mm),
beside the same for the shipped model. Usage (from the repository root): python results/training/multitask_mixed_norm/probe.py CKPT [CKPT ...]"""
import sys
from pathlib import Path
import torch
torch.set_num_threads(2)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_table, damage_variants
from hetero_qc.evaluation.experiment import trained
data = Path("../shared/data/other-sites/nichart-demo23")
for ck in sys.argv[1:]:
    m = trained("long", "multitask", 4, checkpoint=ck)
    records = [r for r in FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()
               if 6 <= int(r.subject.removeprefix("Subj")) <= 13]
    nichart = [preprocess(r, m.model.preprocessing) for r in records]
    site = damage_table(m, nichart, {}, (0.0, 0.0, 0.0))
    variants = damage_variants(m, ["levels=[outside_brain,outside_brain_10mm]", "training_mix=false"])
    ixi = damage_table(m, m.test_scans[:4], variants, (0.0, 0.0, 0.0))
    print(ck, "NiChart Subj6-13 CGM Dice", round(site.dice.mean(), 3),
          "| IXI 4 test: clean", round(ixi[ixi.variant == "clean"].dice.mean(), 3),
          "drop", ixi.groupby("variant").dice_drop.mean().round(3).to_dict(),
          "sigma_s", ixi.groupby("variant").sigma_s.median().round(3).to_dict(), flush=True)
