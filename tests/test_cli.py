import hashlib
import json

import nibabel as nib
import numpy as np
import pytest

from hetero_qc.cli import main
from tests.conftest import make_phantom


@pytest.fixture
def scan(tmp_path):
    path = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(make_phantom(24)[0, 0].numpy() * 1000, np.diag([1.2, 1.2, 1.2, 1])), path)
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("artefact", ["motion", "ghosting", "spike", "bias_field", "noise", "partial_noise"])
def test_corrupt_writes_a_copy_and_leaves_input(scan, tmp_path, capsys, artefact):
    before = digest(scan)
    out = tmp_path / "out" / "corrupted.nii.gz"
    assert main(["corrupt", str(scan), str(out), "--artefact", artefact, "--seed", "1"]) == 0
    assert digest(scan) == before
    image = nib.load(out)
    assert image.shape == (24, 24, 24) and np.allclose(image.affine, nib.load(scan).affine)
    assert not np.allclose(image.get_fdata(), nib.load(scan).get_fdata())
    assert json.loads(capsys.readouterr().out)["artefact"] == artefact
    assert [p.name for p in out.parent.iterdir()] == ["corrupted.nii.gz"]  # no temporary left


def test_corrupt_options_reach_the_artefact(scan, tmp_path, capsys):
    out = tmp_path / "o.nii.gz"
    assert main(["corrupt", str(scan), str(out), "--artefact", "noise", "--set", "snr_db=3"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["snr_db"] == pytest.approx(3.0)


@pytest.mark.parametrize("args, message", [
    (["missing.nii.gz", "o.nii.gz", "--artefact", "motion"], "no such file"),
    (["{scan}", "o.nii.gz", "--artefact", "motion", "--set", "degrees=-3"], "degrees"),
    (["{scan}", "o.nii.gz", "--artefact", "motion", "--set", "colour=3"], "colour"),
    (["{scan}", "{scan}", "--artefact", "motion"], "output must differ"),
    (["{text}", "o.nii.gz", "--artefact", "motion"], "not a NIfTI"),
    (["{broken}", "o.nii.gz", "--artefact", "motion"], "cannot be read"),
])
def test_bad_input_gives_one_clear_line(scan, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(scan.read_bytes()[:200])
    args = [a.format(scan=scan, text=text, broken=broken) for a in args]
    assert main(["corrupt", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "o.nii.gz").exists()
