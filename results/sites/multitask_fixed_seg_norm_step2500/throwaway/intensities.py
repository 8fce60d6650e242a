"""Throwaway (stop 42): the preprocessed intensities (the network's input scale), NiChart Subj6-13 against 4 IXI test
scans, from the labels (DLMUSE: CGM 100-207): cortex and the rest of the brain, the head's 99th percentile, and where
the smooth-tissue anchor lies (its share inside the brain) and at what level."""
from pathlib import Path
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
    x, head, brain, cgm = s.image, s.head.bool(), s.brain.bool(), s.cgm.bool()
    tissue = smooth_tissue(x, head, st.head_threshold, st.smooth_fraction)
    print(f"{s.subject:16s} cgm median {float(x[cgm].median()):.3f}, rest of brain {float(x[brain & ~cgm].median()):.3f}, "
          f"p99 head {float(x[head].quantile(0.99)):.3f}; anchor in brain {float((tissue & brain).sum() / tissue.sum()):.2f}, "
          f"its median there {float(x[tissue & brain].median()):.3f}")
