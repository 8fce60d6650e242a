"""Throwaway (stop 43), run from the repository root: head volume and background share of a sample of scans (the
first run listed NiChart, single scans and MNI; the glob was then changed to every 20th IXI scan and run again)."""
import glob, torch, numpy as np, nibabel as nib
torch.set_num_threads(1)
from pathlib import Path
from hetero_qc.data import ScanRecord, preprocess
from hetero_qc.inference import load_model
m = load_model("src/hetero_qc/shipped/model.ckpt")
paths = sorted(glob.glob("data/ixi-hh-t1-2mm/**/*T1w.nii.gz", recursive=True))[::20]
for p in paths:
    s = preprocess(ScanRecord(Path(p).name, Path(p)), m.preprocessing)
    raw = np.asarray(nib.load(p).dataobj)
    zero = (raw == raw.min()).mean()
    vol = s.head.sum().item() * np.prod(s.spacing) / 1e6
    print(f"{Path(p).name:40s} head {vol:.2f} L  raw-min share {zero:.2f}  img>0 outside head {(s.image[~s.head] > 0).float().mean():.3f}")
