"""Throwaway (stop 48), not part of the package: why the 16-subject-calibrated deep-instance
candidate's first calibration let `make demo`'s moved scan through, and what cutting sigma_r against clean scans changes.

1. `make demo`'s scans scored by the candidate (hetero-qc qc --model ..., into OUT): verdicts, the CGM Dice of
   each against the DLMUSE labels, and how far the damaged scans' reconstructions are from the clean scan's.
2. From the committed tables: how often each model calls a copy whose reconstruction RMSE at least doubled
   `ok`, and what a lower sigma_r cut-off would change (ok <-> degraded only; both are kept).
3. sigma_r cut against clean scans (the rule since stop 48), on each model's validation scores.
4. The model shipped since stop 48 on the 320 test copies, its verdicts recomputed from the committed scores.
Run from the repository root: .venv/bin/python results/damage/throwaway_stop48/demo_and_sigma_r_cutoff.py
"""
import io
import json
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.processing import resample_from_to

CANDIDATE = "results/damage/multitask_fixed_seg_norm_deep_instance_step1500_val16"
SHIPPED = "results/damage/multitask_any_margin_step2500_v6_full"

with tempfile.TemporaryDirectory() as out:
    subprocess.run([sys.executable.replace("python", "hetero-qc"), "qc", "data/demo", "--out", out,
                    "--model", f"{CANDIDATE}/model.ckpt"], check=True, capture_output=True)
    print(pd.read_csv(f"{out}/qc.csv")[["scan", "verdict", "sigma_r", "sigma_s", "blur"]].to_string())
    labels = nib.load("data/ixi-hh-t1-2mm/labels/IXI039-HH-1261_dlmuse.nii.gz")
    clean = nib.load(f"{out}/IXI039-HH-1261_clean_recon.nii.gz").get_fdata()
    for variant in ["clean", "motion", "partial_noise"]:
        cgm = nib.load(f"{out}/IXI039-HH-1261_{variant}_cgm.nii.gz")
        lab = np.asarray(resample_from_to(labels, cgm, order=0).dataobj)
        truth, pred = (lab >= 100) & (lab <= 207), np.asarray(cgm.dataobj) > 0.5
        recon = nib.load(f"{out}/IXI039-HH-1261_{variant}_recon.nii.gz").get_fdata()
        head = clean > 0.05
        print(f"{variant}: CGM Dice {2 * (pred & truth).sum() / (pred.sum() + truth.sum()):.4f}, "
              f"RMS of recon - clean recon over the head {np.sqrt(((recon - clean)[head] ** 2).mean()):.4f}")

for name, table, cutoffs in [("candidate", f"{CANDIDATE}_full/damage.csv", f"{CANDIDATE}/cutoffs.json"),
                             ("shipped", f"{SHIPPED}/damage.csv", None)]:
    d = pd.read_csv(table)
    c = json.load(open(cutoffs)) if cutoffs else json.load(open(f"{SHIPPED}/summary.json"))["cutoffs"]
    damaged = d["variant"] != "clean"
    print(f"{name}: sigma_r cut-off {c['sigma_r']:.4f}; clean sigma_r max {d.loc[~damaged, 'sigma_r'].max():.4f}")
    for cut in sorted({round(c["sigma_r"], 4), 0.09, 0.08, 0.07, 0.06}, reverse=True):
        ok = (d["sigma_s"] <= c["sigma_s"]) & (d["blur"] <= c["blur"]) & (d["sigma_r"] <= cut)
        print(f"  sigma_r cut-off {cut}: clean flagged {(~ok & ~damaged).sum()} of {(~damaged).sum()}; "
              f"`ok` among RMSE-doubled copies {(ok & damaged & d['error_doubled']).sum()} of "
              f"{(damaged & d['error_doubled']).sum()}; among Dice drop > 0.05 {(ok & damaged & (d['dice_drop'] > 0.05)).sum()}"
              f" of {(damaged & (d['dice_drop'] > 0.05)).sum()}")

# 3. The rule blur already follows, for sigma_r: Youden's index between the RMSE-doubled copies and the *clean*
#    scans (not the rest), floored at 5% clean false alarms, on each model's committed validation scores.
from hetero_qc.evaluation.cutoffs import _clean_floor  # noqa: E402
from hetero_qc.qc.verdict import youden_threshold  # noqa: E402

for name, scores, table, cutoffs in [
        ("candidate", f"{CANDIDATE}/validation_scores.csv", f"{CANDIDATE}_full/damage.csv", f"{CANDIDATE}/cutoffs.json"),
        ("shipped until stop 48", "git:79d5052:src/hetero_qc/shipped/validation_scores.csv", f"{SHIPPED}/damage.csv",
         "git:79d5052:src/hetero_qc/shipped/cutoffs.json")]:
    def read(path: str):  # the model shipped until stop 48 is in git history only
        return subprocess.run(["git", "show", path[4:]], check=True, capture_output=True, text=True).stdout \
            if path.startswith("git:") else open(path).read()
    v, d, c = pd.read_csv(io.StringIO(read(scores))), pd.read_csv(table), json.loads(read(cutoffs))
    clean, doubled = (v["variant"] == "clean").to_numpy(), v["error_doubled"].to_numpy()
    cut = max(youden_threshold(v.loc[doubled, "sigma_r"].to_numpy(), v.loc[clean, "sigma_r"].to_numpy()),
              _clean_floor(v.loc[clean, "sigma_r"].to_numpy()))
    damaged = d["variant"] != "clean"
    kept = (d["sigma_s"] <= c["sigma_s"]) & (d["blur"] <= c["blur"])
    print(f"{name}: sigma_r cut-off doubled-vs-clean {cut:.4f} (now {c['sigma_r']:.4f}; validation clean max "
          f"{v.loc[clean, 'sigma_r'].max():.4f})")
    for r in (c["sigma_r"], cut):
        ok, degraded = kept & (d["sigma_r"] <= r), kept & (d["sigma_r"] > r)
        print(f"  at {r:.4f}: clean test flagged {(~ok & ~damaged).sum()} of 16; `ok` among RMSE-doubled "
              f"{(ok & damaged & d['error_doubled']).sum()} of {(damaged & d['error_doubled']).sum()}; `degraded` among "
              f"the other damaged copies {(degraded & damaged & ~d['error_doubled']).sum()} of {(damaged & ~d['error_doubled']).sum()}")

# 4. The shipped model since stop 48 (the candidate, calibrated with sigma_r against clean: src/hetero_qc/shipped/)
#    on the 320 test copies: the scores of ..._val16_full/damage.csv do not depend on the cut-offs (the same
#    validation scores, so the same sharpness profile), so its summary is recomputed exactly with the new ones.
from hetero_qc.evaluation.damage import summarise, verdicts  # noqa: E402
from hetero_qc.qc.verdict import Cutoffs  # noqa: E402

shipped = Cutoffs.load("src/hetero_qc/shipped/cutoffs.json")
table = pd.read_csv(f"{CANDIDATE}_full/damage.csv")
table["verdict"] = verdicts(table, shipped)
summary = summarise(table, shipped)
print("shipped cut-offs:", {k: round(getattr(shipped, k), 4) for k in ("sigma_r", "sigma_s", "blur")})
print(pd.crosstab(table["variant"], table["verdict"]).to_string())
print({k: round(v["value"], 4) for k, v in summary["targets"].items()})
