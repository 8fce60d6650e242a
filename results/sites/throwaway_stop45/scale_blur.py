"""Throwaway (stop 45), run from the repository root: a blur score that does not count edges.

The shipped per-axis sharpness (scoring.axis_sharpness: log mean squared neighbour difference along each
axis, less the three axes' mean) counts how many head edges face each axis, so it reads the field of view
(IXI's neck and face; brainchop's cropped head) as well as blur. Within one axis, the ratio of the energy of
one-voxel differences to that of two-voxel differences does not count edges: a step edge gives 1/2 whatever
the number of edges, an edge blurred over w > 2 voxels about 1/4, white noise 1. Question: does that ratio
(per axis, against IXI's clean mean, absolute or less the three axes' mean) keep IXI's clean and moved scans
apart and stop reading the sharp 1 mm brainchop scan as blurred?"""
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_variants
from hetero_qc.evaluation.experiment import trained
from hetero_qc.qc.scoring import axis_sharpness

m = trained("long", "multitask", 8, checkpoint="src/hetero_qc/shipped/model.ckpt")
settings = m.model.preprocessing
data = Path("../shared/data/other-sites")


def scale_ratio(image, head):
    """Per axis: log(mean d1^2 / mean d2^2) over head voxel pairs/triples."""
    out = []
    for axis in range(3):
        n = image.shape[axis]
        x = image.float()
        d1 = x.narrow(axis, 1, n - 2) - x.narrow(axis, 0, n - 2)
        d2 = x.narrow(axis, 2, n - 2) - x.narrow(axis, 0, n - 2)
        inside = head.narrow(axis, 0, n - 2) & head.narrow(axis, 2, n - 2)
        out.append(float(((d1[inside] ** 2).mean() / (d2[inside] ** 2).mean()).log()))
    return np.array(out)


rows = []
def add(group, name, image, head):
    rows.append((group, name, np.array(axis_sharpness(image, head)), scale_ratio(image, head)))

variants = damage_variants(m, ["levels=[mild,moderate]", "training_mix=false"])["motion"]
scans = m.val_scans[:8] + m.test_scans[:8]
for i, scan in enumerate(scans):
    add("ixi_clean" if i < 8 else "ixi_clean_test", scan.subject, scan.image[0], scan.head[0])
    if i < 8:
        continue
    g = torch.Generator().manual_seed(i)
    for sev, t in variants.items():
        copy = t(scan.image[None], scan.spacing, g, scan.brain[None]).image[0, 0]
        add(f"ixi_motion_{sev}", scan.subject, copy, scan.head[0])
nichart = [preprocess(r, settings) for r in FolderSource(data / "nichart-demo23", "t1/*_T1w.nii.gz",
           r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()][:10]
for scan in nichart:
    add("nichart", scan.subject, scan.image[0], scan.head[0])
for r in FolderSource(data / "single", "*.nii.gz", r"(?P<subject>.+)_T1w").records():
    scan = preprocess(r, settings)
    add("single", scan.subject, scan.image[0], scan.head[0])

ref = [np.mean([r[k] for r in rows if r[0] == "ixi_clean"], axis=0) for k in (2, 3)]
print("IXI validation clean profiles: shipped", np.round(ref[0], 3), "scale ratio", np.round(ref[1], 3))
print(f"{'group':20s} {'scan':18s} {'shipped':>8s} {'ratio_abs':>9s} {'ratio_rel':>9s}   ratio per axis")
for group, name, head, ratio in rows:
    rel = ratio - ratio.mean()
    print(f"{group:20s} {name:18s} {max(ref[0] - head):8.3f} {max(ref[1] - ratio):9.3f} "
          f"{max((ref[1] - ref[1].mean()) - rel):9.3f}   {np.round(ratio, 3)}")
