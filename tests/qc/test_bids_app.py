"""``hetero-qc qc BIDS_DIR OUT_DIR participant|group``: BIDS derivatives out, one-line errors."""

from __future__ import annotations

import json

import nibabel as nib
import pandas as pd
import pytest

from hetero_qc.cli import main
from hetero_qc.qc.bids import check_output_folder
from tests.qc.conftest import digest, head, write

SCANS = ["sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.nii.gz", "sub-01/ses-b/anat/sub-01_ses-b_acq-fast_T1w.nii.gz",
         "sub-02/anat/sub-02_T1w.nii.gz"]


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    for name in SCANS:
        write(root / name, head(32))
    write(root / "derivatives" / "other" / "sub-01" / "anat" / "sub-01_desc-brain_T1w.nii.gz", head(32))
    (root / "dataset_description.json").write_text('{"Name": "phantoms", "BIDSVersion": "1.9.0"}')
    return root


def test_participant_then_group_write_bids_derivatives(model, dataset, tmp_path, capsys):
    before = digest(dataset)
    out = tmp_path / "derivatives"
    assert main(["qc", str(dataset), str(out), "participant", "--participant-label", "01", "--model", str(model)]) == 0
    assert digest(dataset) == before  # the input dataset is untouched
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and len(description["GeneratedBy"][0]["Description"]) > 64
    anat = out / "sub-01" / "ses-a" / "anat"
    for desc in ("recon", "sigma", "cgmprob", "sigmaseg"):
        assert nib.load(anat / f"sub-01_ses-a_run-1_desc-{desc}_T1w.nii.gz").shape == (32, 32, 32)
    sidecar = json.loads((anat / "sub-01_ses-a_run-1_T1w.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.nii.gz"]
    assert {"verdict", "sigma_r", "sigma_s", "blur", "cutoffs", "slice_mm", "thick_slices", "note"} <= set(sidecar)
    assert (out / "sub-01" / "ses-b" / "anat" / "sub-01_ses-b_acq-fast_T1w.json").exists()
    assert not (out / "sub-02").exists()  # not asked for
    assert main(["qc", str(dataset), str(out), "participant", "--participant-label", "sub-02", "--model", str(model)]) == 0
    assert main(["qc", str(dataset), str(out), "group"]) == 0
    table = pd.read_csv(out / "group_T1w.tsv", sep="\t")
    assert list(table["scan"]) == ["sub-01_ses-a_run-1", "sub-01_ses-b_acq-fast", "sub-02"]
    sidecars = [json.loads(p.read_text()) for p in sorted(out.glob("sub-*/**/*_T1w.json"))]
    for column in ("verdict", "slice_mm", "thick_slices"):  # the group table carries each sidecar's line
        assert list(table[column]) == [values[column] for values in sidecars]
    report = (out / "report.html").read_text()
    assert "sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.html" in report and "3 scan(s) scored" in report
    for path in out.glob("sub-*/**/*_T1w.json"):  # sidecars of a hetero_qc before scores_version: made verdicts
        values = json.loads(path.read_text())
        del values["cutoffs"]["scores_version"]
        path.write_text(json.dumps(values))
    assert main(["qc", str(dataset), str(out), "group"]) == 0


@pytest.mark.parametrize("args, message", [
    (["participant", "--participant-label", "07"], "no participant 07 in this dataset (it has 01, 02)"),
    (["participant", "--session-id", "c"], "no session c"),
    (["group"], "no scans scored here yet"),
])
def test_bids_errors_are_one_line(model, dataset, tmp_path, capsys, args, message):
    assert main(["qc", str(dataset), str(tmp_path / "out"), *args, "--model", str(model)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1 and error.startswith("hetero-qc: error:")


def test_a_folder_without_t1w_and_an_output_inside_the_dataset_are_refused(model, dataset, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "dataset_description.json").write_text('{"Name": "empty", "BIDSVersion": "1.9.0"}')
    assert main(["qc", str(empty), str(tmp_path / "out"), "participant", "--model", str(model)]) == 2
    assert "no T1w scan" in capsys.readouterr().err
    assert main(["qc", str(dataset), str(dataset / "qc"), "participant", "--model", str(model)]) == 2
    assert "inside the input dataset" in capsys.readouterr().err
    check_output_folder(dataset, dataset / "derivatives" / "hetero-qc")  # where BIDS puts derivatives: allowed
    assert main(["qc", str(dataset / "sub-01"), "--participant-label", "01", "--out", str(tmp_path / "o")]) == 2
    assert "need the BIDS App form" in capsys.readouterr().err
