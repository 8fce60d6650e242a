"""Throwaway (stop 46): would instance norms in the deepest levels give a fixed-statistics model the other
site back? With no training: multitask_fixed_seg_norm_contrast's fixed norms turned back into instance norms
(same affine weights, unfix_norms) in one set of modules at a time, through probe.py's measures (NiChart
Subj6-13 CGM Dice; IXI 4 test scans' Dice drop under noise outside the brain, from the edge and from 10 mm).
Usage: unfix_deep.py CKPT PART [PART ...], each PART comma-separated module names under the multitask net
(e.g. net.bottleneck,net.downsamples.3), or "none"."""
import copy
import sys
from pathlib import Path
import torch
torch.set_num_threads(2)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_table, damage_variants
from hetero_qc.evaluation.experiment import trained
from hetero_qc.models.unet import FixedNorm3d, unfix_norms

data = Path("../shared/data/other-sites/nichart-demo23")
m = trained("long", "multitask", 4, checkpoint=sys.argv[1])
original = copy.deepcopy(m.model.net)
records = [r for r in FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()
           if 6 <= int(r.subject.removeprefix("Subj")) <= 13]
nichart = [preprocess(r, m.model.preprocessing) for r in records]
variants = damage_variants(m, ["levels=[outside_brain,outside_brain_10mm]", "training_mix=false"])
print("checkpoint", sys.argv[1], flush=True)
for part in sys.argv[2:]:
    net = copy.deepcopy(original)
    names = [] if part == "none" else part.split(",")
    for name in names:
        unfix_norms(net.get_submodule(name))
    left = sum(isinstance(mod, FixedNorm3d) for mod in net.modules())
    net.eval()
    object.__setattr__(m.model, "net", net)
    site = damage_table(m, nichart, {}, (0.0, 0.0, 0.0))
    ixi = damage_table(m, m.test_scans[:4], variants, (0.0, 0.0, 0.0))
    print(f"instance norms in {part} ({left} fixed norms left): NiChart Subj6-13 CGM Dice", round(site.dice.mean(), 3),
          "| IXI 4 test: clean", round(ixi[ixi.variant == "clean"].dice.mean(), 3),
          "drop", ixi.groupby("variant").dice_drop.mean().round(3).to_dict(),
          "sigma_s", ixi.groupby("variant").sigma_s.median().round(3).to_dict(), flush=True)
