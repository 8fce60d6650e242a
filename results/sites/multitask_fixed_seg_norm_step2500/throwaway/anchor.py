"""Throwaway (stop 42): where the smooth-tissue anchor lies, NiChart Subj6-13 against 4 IXI test scans: the share of
the anchor's voxels inside the brain (labels), and the anchor's median against the brain's non-cortex median."""
from pathlib import Path
import torch
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.data.preprocess import smooth_tissue
from hetero_qc.evaluation.experiment import trained
model = trained("long", "multitask", 4, checkpoint="src/hetero_qc/shipped/model.ckpt")
st = model.model.preprocessing
data = Path("/work/shared/data/other-sites/nichart-demo23")
scans = [preprocess(r, st) for r in FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w",
                                                   "labels/{subject}_dlmuse.nii.gz").records()]
scans.sort(key=lambda s: int(s.subject.removeprefix("Subj")))
for s in model.test_scans[:4] + scans[5:13]:
    x, head = s.image, s.head.bool()
    tissue = smooth_tissue(x, head, st.head_threshold, st.smooth_fraction)
    brain, cgm = s.brain.bool(), s.cgm.bool()
    wm = brain & ~cgm
    print(f"{s.subject:16s} anchor voxels {int(tissue.sum()):6d}, in brain {float((tissue & brain).sum() / tissue.sum()):.2f}; "
          f"anchor median {float(x[tissue].median()):.3f}, in-brain anchor median {float(x[tissue & brain].median()):.3f}, "
          f"outside-brain anchor median {float(x[tissue & ~brain].median()) if (tissue & ~brain).any() else float('nan'):.3f}, brain non-cortex {float(x[wm].median()):.3f}")
