"""Throwaway (stop 46): does re-estimating a fixed-norm model's statistics on a new site's clean scans
(AdaBN, Li et al. 2016) close its CGM Dice gap there? Same procedure twice, only the scans differ:
the statistics of every FixedNorm3d are re-estimated from N random 64^3 windows (the training patch) of
(a) IXI validation scans, (b) NiChart Subj1-5 (the site references the site calibration already uses);
then CGM Dice on NiChart Subj6-13 (neither reference nor held out) and on 4 IXI test scans.
Usage (repository root): python results/sites/throwaway_stop46/adabn.py CKPT"""
import copy
import sys
from pathlib import Path
import torch
torch.set_num_threads(2)
from hetero_qc.data import FolderSource, preprocess
from hetero_qc.evaluation.damage import damage_table
from hetero_qc.evaluation.experiment import trained
from hetero_qc.models.unet import estimate_norm_statistics

WINDOWS, SIZE = 32, 64
data = Path("../shared/data/other-sites/nichart-demo23")
m = trained("long", "multitask", 4, checkpoint=sys.argv[1])
records = FolderSource(data, "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_dlmuse.nii.gz").records()
number = lambda r: int(r.subject.removeprefix("Subj"))
refs = [preprocess(r, m.model.preprocessing) for r in records if number(r) <= 5]
probe = [preprocess(r, m.model.preprocessing) for r in records if 6 <= number(r) <= 13]


def windows(scans, seed=0):
    """WINDOWS random SIZE^3 windows, each centred on a head voxel, one at a time (1, 1, S, S, S)."""
    g = torch.Generator().manual_seed(seed)
    for i in range(WINDOWS):
        scan = scans[i % len(scans)]
        img = scan.image[None]  # (1, 1, D, H, W)
        pad = [max(0, SIZE - s) for s in img.shape[2:]]
        img = torch.nn.functional.pad(img, [p for q in reversed(pad) for p in (q // 2, q - q // 2)])
        head = torch.nn.functional.pad(scan.head[None].float(), [p for q in reversed(pad) for p in (q // 2, q - q // 2)])[0, 0]
        idx = head.nonzero()
        c = idx[torch.randint(len(idx), (1,), generator=g)][0]
        start = [int(min(max(int(c[a]) - SIZE // 2, 0), img.shape[2 + a] - SIZE)) for a in range(3)]
        yield img[:, :, start[0]:start[0] + SIZE, start[1]:start[1] + SIZE, start[2]:start[2] + SIZE]


print("checkpoint", sys.argv[1], flush=True)
base = damage_table(m, probe, {}, (0.0, 0.0, 0.0)).dice.mean()
print("trained statistics: NiChart Subj6-13 Dice", round(base, 3), flush=True)
net0 = copy.deepcopy(m.model.net.state_dict())
for name, scans in (("IXI validation", m.val_scans), ("NiChart Subj1-5", refs)):
    m.model.net.load_state_dict(net0)
    with torch.no_grad():
        estimate_norm_statistics(m.model.net, windows(scans))
    m.model.net.eval()
    site = damage_table(m, probe, {}, (0.0, 0.0, 0.0))
    ixi = damage_table(m, m.test_scans[:4], {}, (0.0, 0.0, 0.0))
    print(f"statistics from {WINDOWS} windows of {name}: NiChart Subj6-13 Dice {site.dice.mean():.3f}, "
          f"sigma_s median {site.sigma_s.median():.3f} | IXI 4 test Dice {ixi.dice.mean():.3f}, "
          f"sigma_s median {ixi.sigma_s.median():.3f}", flush=True)
