"""The model shipped in src/hetero_qc/shipped (`make model`): small enough for git, loadable, calibrated, scoring."""

import json

from hetero_qc.cli import main
from hetero_qc.data import Preprocessing
from hetero_qc.inference import load_model
from hetero_qc.paths import DATA_DIR, MODEL_DIR
from hetero_qc.qc.verdict import Cutoffs

MODEL = MODEL_DIR / "model.ckpt"


def test_shipped_model_is_small_loadable_and_calibrated():
    assert MODEL.stat().st_size < 30 * 2**20
    model = load_model(MODEL)
    assert model.multitask and isinstance(model.preprocessing, Preprocessing) and model.roi_size == (80, 80, 80)
    assert model.mirror  # its segmentation averages the left-right mirrored prediction
    assert model.global_step > 0
    cutoffs = Cutoffs.load(MODEL.parent / "cutoffs.json")
    assert 0 < cutoffs.sigma_r < 1 and 0 < cutoffs.sigma_s and 0 < cutoffs.blur < 1


def test_shipped_model_scores_the_template(tmp_path):
    out = tmp_path / "qc"
    assert main(["qc", str(DATA_DIR / "demo" / "MNI152_2mm.nii.gz"), "--out", str(out)]) == 0
    report = json.loads((out / "qc.json").read_text())
    assert report["failures"] == [] and len(report["scans"]) == 1

