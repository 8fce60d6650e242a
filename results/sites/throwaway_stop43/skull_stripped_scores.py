"""Throwaway (stop 43), run from the repository root: sigma_s of IXI test scans skull-stripped (the shipped model), as training strips them and
as a user's stripped scan meets the tool (written to NIfTI, preprocessed afresh)."""
import sys, tempfile
from pathlib import Path
import torch, numpy as np
torch.set_num_threads(1)
from hetero_qc.data import ScanRecord, preprocess
from hetero_qc.data.augmentation import skull_strip
from hetero_qc.data.nifti import save_volume
from hetero_qc.evaluation.damage import damage_table
from hetero_qc.evaluation.experiment import trained
from hetero_qc.qc.verdict import Cutoffs
ck = "src/hetero_qc/shipped/model.ckpt"
cut = Cutoffs.load(Path(ck).parent / "cutoffs.json")
m = trained("long", "multitask", 8, checkpoint=ck)
scans = m.test_scans[:8]
stripped = [skull_strip(s) for s in scans]
tmp = Path(tempfile.mkdtemp())
user = []
for s in stripped:
    p = tmp / f"{s.subject}.nii.gz"
    save_volume(s.image[0].numpy(), s.affine, p)
    u = preprocess(ScanRecord(s.subject, p), m.model.preprocessing)
    user.append(u._replace(cgm=s.cgm, brain=s.brain, has_labels=True))
for name, group in (("clean", scans), ("stripped", stripped), ("stripped_user", user)):
    t = damage_table(m, group, {}, cut.sharpness)
    print(name, t[["subject", "sigma_r", "sigma_s", "blur", "dice"]].round(3).to_string(), sep="\n")
    print(name, "median sigma_s", t.sigma_s.median().round(3), "dice", t.dice.mean().round(3), "flag s", (t.sigma_s > cut.sigma_s).sum(), "r", (t.sigma_r > cut.sigma_r).sum(), "blur", (t.blur > cut.blur).sum())
