"""Throwaway (stop 42): why does multitask_fixed_seg_norm lose the NiChart segmentation (CGM Dice 0.557)?
CGM Dice of NiChart Subj6-13 (not the site reference, not held out), clean, with the segmentation path's norms
(a) fixed at IXI's statistics, as trained; (b) instance norms again (unfix_norms); (c) fixed at statistics
re-estimated on 8 random 80^3 windows of each of NiChart Subj1-5 (AdaBN: Li et al. 2016)."""
import copy, sys
from pathlib import Path
import torch

from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_table
from hetero_qc.evaluation.experiment import trained
from hetero_qc.models.unet import estimate_norm_statistics, unfix_norms

torch.manual_seed(0)
ckpt = sys.argv[1]
model = trained("long", "multitask", 2, checkpoint=ckpt)
settings = model.model.preprocessing
data = Path("/work/shared/data/other-sites/nichart-demo23")
scans = [preprocess(r, settings) for r in FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w",
                                                         "labels/{subject}_dlmuse.nii.gz").records()]
scans.sort(key=lambda s: int(s.subject.removeprefix("Subj")))
reference, judged = scans[:5], scans[5:13]
sharp = (0.0, 0.0, 0.0)
def dice(m):
    t = damage_table(m, judged, {}, sharp)
    return t["dice"].round(3).tolist(), round(float(t["dice"].mean()), 3)
print("fixed, IXI statistics", dice(model), flush=True)

from dataclasses import replace
unfixed = model._replace(model=replace(model.model, net=unfix_norms(copy.deepcopy(model.net))))
print("instance norms", dice(unfixed), flush=True)
def windows():
    for s in reference:
        x = s.image[None]  # (1, 1, D, H, W)
        for _ in range(8):
            o = [int(torch.randint(0, max(n - 80, 0) + 1, ())) for n in x.shape[2:]]
            yield x[:, :, o[0]:o[0] + 80, o[1]:o[1] + 80, o[2]:o[2] + 80]
net = copy.deepcopy(model.net)
print("samples", estimate_norm_statistics(net, windows()))
adapted = model._replace(model=replace(model.model, net=net))
print("fixed, NiChart statistics (AdaBN)", dice(adapted), flush=True)
