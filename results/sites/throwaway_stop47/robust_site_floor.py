"""Throwaway (stop 47): the NiChart verdicts under cut-offs moved to the site by the code of this commit
(Cutoffs.for_site raised to the robust 95% floor of the site's clean reference scans), recomputed from a
committed sites.csv (no model run: the scores, sharpness and Dice are the table's), beside the same with
the cut-offs moved by the medians alone (the summary.json in that folder).
Usage (from the repository root): python results/sites/throwaway_stop47/robust_site_floor.py SITES_DIR CUTOFFS_JSON ..."""
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, "experiments")
from sites import site_calibrated  # noqa: E402

from hetero_qc.qc.verdict import Cutoffs  # noqa: E402

for folder, cutoffs in zip(sys.argv[1::2], sys.argv[2::2]):
    table = pd.read_csv(Path(folder) / "sites.csv")
    nichart = table[table.group == "nichart"]
    reference = nichart["subject"].isin([f"Subj{i}" for i in range(1, 6)])
    moved, summary = site_calibrated(nichart[reference & (nichart.variant == "clean")],
                                     {"nichart": nichart[~reference], "nichart_held_out": table[table.group == "nichart_held_out"]},
                                     Cutoffs.load(Path(cutoffs)))
    before = json.load(open(Path(folder) / "summary.json"))["site_calibrated"]
    print(folder)
    for key in ("sigma_r", "sigma_s", "blur"):
        print(f"  {key} cut-off: medians alone {before['cutoffs'][key]:.4f}, with the floor {getattr(moved, key):.4f}")
    for name in ("nichart", "nichart_held_out"):
        print(f"  {name}: flagged {before[name]['n_flagged']} of {before[name]['n_scans']} -> "
              f"{summary[name]['n_flagged']} of {summary[name]['n_scans']} {summary[name]['verdicts']}")
    if "damage_nichart" in summary:  # the NiChart copies' verdicts, where the sites run made damaged ones
        after, old = summary["damage_nichart"]["verdicts"], before["damage_nichart"]["verdicts"]
        for variant in after:
            print(f"  {variant}: {old[variant]} -> {after[variant]}")
