"""The model shipped in models/default (`make model`): small enough for git, loadable, calibrated, scoring."""

import json

from hetero_qc.cli import main
from hetero_qc.inference import load_network
from hetero_qc.paths import DATA_DIR, REPO_ROOT
from hetero_qc.qc.verdict import Cutoffs

MODEL = REPO_ROOT / "models" / "default" / "model.ckpt"


def test_shipped_model_is_small_loadable_and_calibrated():
    assert MODEL.stat().st_size < 30 * 2**20
    net, hparams = load_network(MODEL)
    assert type(net).__name__ == "MultiTaskNet" and "preprocessing" in hparams
    cutoffs = Cutoffs.load(MODEL.parent / "cutoffs.json")
    assert 0 < cutoffs.sigma_r < 1 and 0 < cutoffs.sigma_s and 0 < cutoffs.blur < 1


def test_shipped_model_scores_the_template(tmp_path):
    out = tmp_path / "qc"
    assert main(["qc", str(DATA_DIR / "demo" / "MNI152_2mm.nii.gz"), "--out", str(out)]) == 0
    report = json.loads((out / "qc.json").read_text())
    assert report["failures"] == [] and len(report["scans"]) == 1

