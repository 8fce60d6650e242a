"""Throwaway (stop 45): which norms carry distant noise into the cortex, and which carry the other site?
With no training: the step-2500 multitask_mixed_norm checkpoint (instance shares still 0.98 on average, fixed
statistics estimated on clean patches), its shares set to 0 (fixed statistics only) in one part of the
network at a time, through probe.py's measures (NiChart Subj6-13 CGM Dice; IXI 4 test scans' Dice drop under
noise outside the brain, from the edge and from 10 mm). Usage: zero_shot.py CKPT PART [PART ...], each PART a
comma-separated list of module-name prefixes (under the multitask net), or "none"."""
import sys
from pathlib import Path
import torch
torch.set_num_threads(2)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_table, damage_variants
from hetero_qc.evaluation.experiment import trained
from hetero_qc.models.unet import MixedNorm3d

data = Path("../shared/data/other-sites/nichart-demo23")
ck = sys.argv[1]
m = trained("long", "multitask", 4, checkpoint=ck)
net = m.model.net
originals = {name: mod.instance_share.detach().clone() for name, mod in net.named_modules() if isinstance(mod, MixedNorm3d)}
records = [r for r in FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()
           if 6 <= int(r.subject.removeprefix("Subj")) <= 13]
nichart = [preprocess(r, m.model.preprocessing) for r in records]
variants = damage_variants(m, ["levels=[outside_brain,outside_brain_10mm]", "training_mix=false"])
for part in sys.argv[2:]:
    prefixes = [] if part == "none" else part.split(",")
    fixed = 0
    with torch.no_grad():
        for name, mod in net.named_modules():
            if isinstance(mod, MixedNorm3d):
                zero = any(name.startswith(p) for p in prefixes)
                mod.instance_share.copy_(torch.zeros_like(originals[name]) if zero else originals[name])
                fixed += zero
    site = damage_table(m, nichart, {}, (0.0, 0.0, 0.0))
    ixi = damage_table(m, m.test_scans[:4], variants, (0.0, 0.0, 0.0))
    print(f"fixed in {part} ({fixed} norm modules): NiChart Subj6-13 CGM Dice", round(site.dice.mean(), 3),
          "| IXI 4 test: clean", round(ixi[ixi.variant == "clean"].dice.mean(), 3),
          "drop", ixi.groupby("variant").dice_drop.mean().round(3).to_dict(),
          "sigma_s", ixi.groupby("variant").sigma_s.median().round(3).to_dict(), flush=True)
