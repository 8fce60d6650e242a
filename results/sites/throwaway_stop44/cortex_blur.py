"""Throwaway (stop 44), run from the repository root: the blur score's per-axis sharpness measured over
the head (as shipped) and over the cortex only (the labelled cortex grown by one voxel; the predicted one
for the single scans, which have no labels), on IXI test scans clean and under simulated motion, on
NiChart scans, and on the four single scans of other scanners. Question: is the head's profile what
makes sharp scans of other sites read as blurred (field of view, neck and face), and does the cortex's
keep motion visible?"""
from pathlib import Path
import numpy as np, torch
import torch.nn.functional as F
torch.set_num_threads(1)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_variants
from hetero_qc.evaluation.experiment import trained
from hetero_qc.qc.scoring import axis_sharpness

ck = "src/hetero_qc/shipped/model.ckpt"
m = trained("long", "multitask", 8, checkpoint=ck)
settings = m.model.preprocessing
data = Path("../shared/data/other-sites")

def band(cgm):  # (D, H, W) bool -> grown by one voxel
    return F.max_pool3d(cgm[None, None].float(), 3, 1, 1)[0, 0] > 0

rows = []
def add(group, name, image, scan, cortex):
    head = axis_sharpness(image, scan.head[0])
    cort = axis_sharpness(image, band(cortex) & scan.head[0])
    rows.append((group, name, head, cort))

variants = damage_variants(m, ["levels=[mild,moderate]", "training_mix=false"])["motion"]
for i, scan in enumerate(m.test_scans[:8]):
    add("ixi_clean", scan.subject, scan.image[0], scan, scan.cgm[0])
    g = torch.Generator().manual_seed(i)
    for sev, t in variants.items():
        copy = t(scan.image[None], scan.spacing, g, scan.brain[None]).image[0, 0]
        add(f"ixi_motion_{sev}", scan.subject, copy, scan, scan.cgm[0])
nichart = [preprocess(r, settings) for r in FolderSource(data / "nichart-demo23", "t1/*_T1w.nii.gz",
           r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()][:10]
for scan in nichart:
    add("nichart", scan.subject, scan.image[0], scan, scan.cgm[0])
for r in FolderSource(data / "single", "*.nii.gz", r"(?P<subject>.+)_T1w").records():
    scan = preprocess(r, settings)
    with torch.no_grad():
        out = m.model.predict(scan.image[None])
    add("single", scan.subject, scan.image[0], scan, out.seg_logits.softmax(1)[0, 1] > 0.5)

ref = {k: np.mean([r[k] for r in rows if r[0] == "ixi_clean"], axis=0) for k in (2, 3)}
print("profiles (IXI clean mean): head", np.round(ref[2], 3), "cortex", np.round(ref[3], 3))
print(f"{'group':18s} {'scan':18s} {'blur_head':>9s} {'blur_cortex':>11s}")
for group, name, head, cort in rows:
    print(f"{group:18s} {name:18s} {max(ref[2] - np.array(head)):9.3f} {max(ref[3] - np.array(cort)):11.3f}")
