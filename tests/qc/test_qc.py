"""The QC tool end to end on a tiny model trained for a few steps (the shipped one is tested in
test_shipped_model when present), with every kind of bad input."""

from __future__ import annotations

import gzip
import json
import shutil
import struct

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from hetero_qc.cli import main
from hetero_qc.corruption import RandomMotion
from hetero_qc.data import Scan, ScanRecord, preprocess
from hetero_qc.inference import load_model
from hetero_qc.qc.run import model_hash
from hetero_qc.qc.scoring import ScoredScan, axis_blur, axis_sharpness, looks_skull_stripped, thick_slices
from hetero_qc.qc.verdict import (
    BLURRED,
    DEGRADED,
    EXCLUDE,
    OK,
    SCORES_VERSION,
    Cutoffs,
    ScanScores,
    site_clean_floor,
    youden_threshold,
)
from tests.conftest import make_phantom
from tests.qc.conftest import digest, head, write


def test_scores_good_scans_of_any_orientation_and_reports(model, tmp_path, capsys):
    inputs = tmp_path / "in"
    write(inputs / "a.nii.gz", head())
    oblique = np.array([[0, 0, 1.5, 0], [-1.5, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]], float)  # PSR-like
    write(inputs / "b.nii", head(36), affine=oblique)
    before = digest(inputs)
    out = tmp_path / "out"
    assert main(["qc", str(inputs), "--out", str(out), "--model", str(model)]) == 0
    assert digest(inputs) == before  # inputs untouched
    table = pd.read_csv(out / "qc.csv")
    assert list(table["scan"]) == ["a", "b"]
    cutoffs = Cutoffs.load(model.parent / "cutoffs.json")
    for row in table.itertuples():  # each verdict is the one its scores and the model's cut-offs give
        scores = ScanScores(row.sigma_r, row.sigma_s, row.blur)
        assert row.verdict == cutoffs.verdict(scores) and np.isfinite([row.sigma_r, row.sigma_s, row.blur]).all()
    for name, shape in (("a", (40, 40, 40)), ("b", (36, 36, 36))):
        for key in ("recon", "sigma", "cgm", "sigma_seg"):
            image = nib.load(out / f"{name}_{key}.nii.gz")
            assert image.shape == shape  # maps on the scan's own grid
    assert np.allclose(nib.load(out / "b_sigma.nii.gz").affine, oblique)
    assert json.loads((out / "qc.json").read_text())["failures"] == []
    assert "<img src='data:image/png;base64," in (out / "report.html").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


BAD = {
    "notes.txt": ("text", "not a NIfTI"),
    "truncated.nii.gz": ("truncated", "cannot be read"),
    "constant.nii.gz": (np.full((32, 32, 32), 7.0), "constant"),
    "nan.nii.gz": (np.where(np.arange(32**3).reshape(32, 32, 32) == 5, np.nan, 1.0), "NaN"),
    "flat.nii.gz": (np.ones((32, 32)), "3D"),
    "series.nii.gz": (np.ones((16, 16, 16, 3)), "3D"),
    "anisotropic.nii.gz": ((np.ones((32, 32, 8)), (1.0, 1.0, 8.0)), "anisotropic"),
    "body.nii.gz": ((np.ones((300, 300, 40)), (2.0, 2.0, 2.0)), "field of view"),
    "zero_voxel.nii": ("zero voxel size", "voxels of 2x2x0 mm"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_gives_one_line_and_others_are_still_scored(model, tmp_path, capsys, name):
    inputs = tmp_path / "in"
    good = write(inputs / "good.nii.gz", head())
    kind, message = BAD[name]
    bad = inputs / name
    if isinstance(kind, str) and kind == "text":
        bad.write_text("hello")
    elif isinstance(kind, str) and kind == "zero voxel size":  # pixdim[3] = 0 as written (nibabel would read 1 mm and warn)
        write(bad, head(32))
        header = bytearray(bad.read_bytes())
        header[76 + 12 : 76 + 16] = struct.pack("<f", 0.0)
        bad.write_bytes(bytes(header))
    elif isinstance(kind, str):
        bad.write_bytes(gzip.compress(good.read_bytes())[:300])
    elif isinstance(kind, tuple):
        write(bad, kind[0], zooms=kind[1])
    else:
        write(bad, kind)
    out = tmp_path / "out"
    assert main(["qc", str(good), str(bad), "--out", str(out), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("hetero-qc:")]
    assert len(errors) == 1 and name in errors[0] and message in errors[0]
    assert "pixdim" not in err  # no library line beside ours
    assert list(pd.read_csv(out / "qc.csv")["scan"]) == ["good"]


def test_unwritable_output_and_bad_models_fail_clearly(model, tmp_path, capsys):
    scan = write(tmp_path / "a.nii.gz", head())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["qc", str(scan), "--out", str(blocker / "sub"), "--model", str(model)]) == 2
    assert "cannot write" in capsys.readouterr().err
    tampered = tmp_path / "m" / "model.ckpt"
    tampered.parent.mkdir()
    tampered.write_bytes(model.read_bytes()[:5000])
    assert main(["qc", str(scan), "--out", str(tmp_path / "o"), "--model", str(tampered)]) == 2
    assert "not a loadable checkpoint" in capsys.readouterr().err
    other = torch.load(model, weights_only=True)
    other["hetero_qc"]["format"] = 99
    torch.save(other, tampered)
    assert main(["qc", str(scan), "--out", str(tmp_path / "o"), "--model", str(tampered)]) == 2
    assert "format 99" in capsys.readouterr().err
    stale = tmp_path / "stale" / "model.ckpt"
    stale.parent.mkdir()
    stale.write_bytes(model.read_bytes())
    (stale.parent / "cutoffs.json").write_text(json.dumps({"sigma_r": 0.1, "sigma_s": 1.0}))  # before blur
    assert main(["qc", str(scan), "--out", str(tmp_path / "o"), "--model", str(stale)]) == 2
    error = capsys.readouterr().err
    assert "cutoffs.json: cannot read the verdict cut-offs (calibrated on version 1" in error and "make model" in error


def test_cutoffs_of_other_score_definitions_are_refused(tmp_path):
    # A cut-off file calibrated on the median sigma_r (written before scores_version existed) must not
    # cut the RMS sigma_r silently; the current version round-trips.
    current = Cutoffs(0.1, 1.0, 0.1, (0.0, 0.0, 0.0), "validation", {"sigma_r": 0.06, "sigma_s": 0.9, "blur": 0.03})
    current.save(tmp_path / "now.json")
    assert Cutoffs.load(tmp_path / "now.json") == current
    assert json.loads((tmp_path / "now.json").read_text())["scores_version"] == SCORES_VERSION
    old = json.loads((tmp_path / "now.json").read_text())
    del old["scores_version"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"old.json: .*version 1 of the scan scores.*calibrate them again"):
        Cutoffs.load(tmp_path / "old.json")
    assert Cutoffs.from_dict(old, check_version=False).scores_version == 1  # a made verdict's sidecar, reported


def test_verdict_logic_and_youden():
    cut = Cutoffs(sigma_r=0.1, sigma_s=0.2, blur=0.15, sharpness=(0.0, 0.0, 0.0))
    assert cut.verdict(ScanScores(0.05, 0.1, 0.05)) == OK
    assert cut.verdict(ScanScores(0.3, 0.1, 0.05)) == DEGRADED
    assert cut.verdict(ScanScores(0.05, 0.1, 0.3)) == BLURRED
    assert cut.verdict(ScanScores(0.3, 0.1, 0.3)) == BLURRED  # blur names the cause before sigma_r
    assert cut.verdict(ScanScores(0.05, 0.3, 0.3)) == EXCLUDE
    assert youden_threshold(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == pytest.approx(2.5)


def test_cutoffs_with_skull_stripped_ones_go_through_json_and_back():
    # The damage and sites summaries hold the cut-offs as JSON: a plain vars() left the nested
    # skull-stripped Cutoffs in, and json.dumps failed after a 17-minute evaluation (stop 46).
    stripped = Cutoffs(0.08, 0.83, 0.07, (0.0, -0.1, 0.1), "stripped", {"sigma_r": 0.03, "sigma_s": 0.80, "blur": 0.03})
    cut = Cutoffs(0.09, 0.83, 0.07, (0.0, -0.1, 0.1), "validation", {"sigma_r": 0.04, "sigma_s": 0.81, "blur": 0.03},
                  skull_stripped=stripped)
    values = json.loads(json.dumps(cut.to_dict()))
    assert values["skull_stripped"]["sigma_r"] == pytest.approx(0.08)
    assert Cutoffs.from_dict(values) == cut and Cutoffs.from_dict(values).for_scan(True) == stripped


def test_cutoffs_from_validation_scores():
    from hetero_qc.evaluation.cutoffs import calibrate_cutoffs

    table = pd.DataFrame({
        "variant": ["clean", "clean", "noise", "noise", "motion_moderate", "motion_severe"],
        "sigma_r": [0.10, 0.12, 0.30, 0.35, 0.20, 0.25],
        "sigma_s": [0.20, 0.22, 0.24, 0.23, 0.60, 0.70],
        "blur": [0.05, 0.08, 0.00, 0.01, 0.30, 0.35],
        "damaged": [False, False, False, False, True, True],
        "error_doubled": [False, False, True, True, True, True],
    })
    profile = (0.1, -0.1, 0.0)
    cutoffs = calibrate_cutoffs(table, profile)
    assert 0.12 < cutoffs.sigma_r < 0.20 and 0.24 < cutoffs.sigma_s < 0.60 and 0.08 < cutoffs.blur < 0.30
    assert cutoffs.verdict(ScanScores(0.3, 0.23, 0.0)) == DEGRADED  # noisy but segments well
    assert cutoffs.verdict(ScanScores(0.2, 0.65, 0.3)) == EXCLUDE
    assert cutoffs.verdict(ScanScores(0.11, 0.21, 0.3)) == BLURRED
    assert "2 motion copies" in cutoffs.method and cutoffs.sharpness == profile
    assert cutoffs.reference == pytest.approx({"sigma_r": 0.11, "sigma_s": 0.21, "blur": 0.065})  # clean medians
    undamaged = calibrate_cutoffs(table.assign(damaged=False), profile)
    assert undamaged.sigma_s == 0.70 and "largest" in undamaged.method
    # A sigma_s that barely moves: Youden alone would cut inside the clean scans' range.
    flat = table.assign(sigma_s=[0.25, 0.21, 0.20, 0.22, 0.23, 0.24])
    assert calibrate_cutoffs(flat, profile).sigma_s == 0.25  # no clean scan excluded
    assert calibrate_cutoffs(flat, profile).verdict(ScanScores(0.11, 0.25, 0.05)) == OK


def test_sigma_r_cutoff_separates_doubled_errors_from_clean_not_from_milder_damage():
    from hetero_qc.evaluation.cutoffs import calibrate_cutoffs

    # Clean sigma_r up to 0.05; copies whose error rose less than 2x at 0.07-0.09, doubled ones from 0.08.
    table = pd.DataFrame({
        "variant": ["clean"] * 3 + ["bias"] * 3 + ["noise"] * 3,
        "sigma_r": [0.04, 0.045, 0.05, 0.07, 0.08, 0.09, 0.08, 0.12, 0.15],
        "sigma_s": [0.2] * 9, "blur": [0.05] * 9, "damaged": [False] * 9,
        "error_doubled": [False] * 6 + [True] * 3,
    })
    cutoffs = calibrate_cutoffs(table, (0.1, -0.1, 0.0))
    assert cutoffs.sigma_r == pytest.approx(0.065)  # midway between the largest clean (0.05) and smallest doubled (0.08)
    assert cutoffs.verdict(ScanScores(0.085, 0.2, 0.05)) == DEGRADED  # the demo's moved scan, relative to clean
    assert cutoffs.verdict(ScanScores(0.05, 0.2, 0.05)) == OK
    assert "from clean" in cutoffs.method


def test_blur_rises_with_motion_and_smoothing_along_any_axis_not_with_noise():
    image = make_phantom(48, seed=1)  # (1, 1, D, H, W)
    head = image[0, 0] > 0.1
    profile = axis_sharpness(image[0, 0], head)
    assert sum(profile) == pytest.approx(0.0, abs=1e-6)
    assert axis_blur(image[0, 0], head, profile) == pytest.approx(0.0, abs=1e-6)
    moved_blur = []
    for axis in range(3):
        moved = RandomMotion(degrees=5, translation=5, phase_axis=axis)(
            image, (2.0, 2.0, 2.0), torch.Generator().manual_seed(0)).image
        smoothed = (image + image.roll(1, 2 + axis) + image.roll(-1, 2 + axis)) / 3
        moved_blur.append(axis_blur(moved[0, 0], head, profile))  # measured: 0.13-0.17
        assert moved_blur[-1] > 0.1 and axis_blur(smoothed[0, 0], head, profile) > 0.1, axis
    noisy = image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    # Noise sharpens every axis alike: it can only flatten the profile (0.06 here; clean IXI scans'
    # profile is flatter, and 0 dB noise scores 0.04 on them).
    assert axis_blur(noisy[0, 0], head, profile) < min(moved_blur) - 0.05


def test_cutoffs_move_to_a_site_by_its_clean_medians(tmp_path):
    cut = Cutoffs(0.10, 1.05, 0.08, (0.0, 0.0, 0.0), "validation", {"sigma_r": 0.06, "sigma_s": 1.02, "blur": 0.03})
    sharpness = [(0.1, -0.2, 0.1), (0.1, -0.2, 0.1), (0.1, -0.2, 0.1), (0.0, -0.1, 0.1), (0.2, -0.3, 0.1)]
    site = cut.for_site([0.05, 0.06, 0.07, 0.08, 0.30], [1.10, 1.12, 1.11, 1.13, 1.40], sharpness, "site B")
    assert site.sigma_r == pytest.approx(0.10 + 0.07 - 0.06) and site.sigma_s == pytest.approx(1.05 + 1.12 - 1.02)
    assert site.sharpness == pytest.approx((0.1, -0.2, 0.1))  # blur is measured against the site's own profile
    assert site.blur == pytest.approx(0.08 + 0.0 - 0.03)  # median blur of the site's scans against it: 0
    assert site.reference == pytest.approx({"sigma_r": 0.07, "sigma_s": 1.12, "blur": 0.0})
    assert "moved to site B by the medians of 5 clean scans" in site.method
    assert cut.verdict(ScanScores(0.07, 1.12, 0.0)) == EXCLUDE and site.verdict(ScanScores(0.07, 1.12, 0.0)) == OK
    assert site.verdict(ScanScores(0.07, 1.20, 0.0)) == EXCLUDE  # damage above the site's clean level still shows
    site.save(tmp_path / "site.json")
    assert Cutoffs.load(tmp_path / "site.json") == site
    with pytest.raises(ValueError, match="4 clean scans of site B; .* at least 5"):
        cut.for_site([0.1] * 4, [1.0] * 4, sharpness[:4], "site B")
    with pytest.raises(ValueError, match="no clean reference"):
        Cutoffs(0.1, 1.0, 0.1, (0.0, 0.0, 0.0)).for_site([0.1] * 5, [1.0] * 5, sharpness, "site B")


def test_site_cutoffs_do_not_flag_the_sites_own_clean_spread():
    """A site whose clean sigma_s spreads wider than the calibration's: the moved cut-off (1.05 + 1.12 -
    1.02 = 1.15) would flag its clean 1.16 and 1.17; the robust 95% floor (median 1.12, MAD 0.04 ->
    1.12 + 1.645 * 1.4826 * 0.04 = 1.218) lifts it above them, and damage beyond that still shows."""
    cut = Cutoffs(0.10, 1.05, 0.08, (0.0, 0.0, 0.0), "validation", {"sigma_r": 0.06, "sigma_s": 1.02, "blur": 0.03})
    sigma_s = [1.08, 1.09, 1.12, 1.16, 1.17]
    site = cut.for_site([0.07] * 5, sigma_s, [(0.1, -0.2, 0.1)] * 5, "site C")
    assert site_clean_floor(sigma_s) == pytest.approx(1.12 + 1.6449 * 1.4826 * 0.04, abs=1e-4)
    assert site.sigma_s == pytest.approx(site_clean_floor(sigma_s))
    assert all(site.verdict(ScanScores(0.07, s, 0.0)) == OK for s in sigma_s)
    assert site.verdict(ScanScores(0.07, 1.25, 0.0)) == EXCLUDE
    assert site.sigma_r == pytest.approx(0.10 + 0.07 - 0.06)  # no spread: the moved cut-off stands
    assert "raised to flag at most 5% of a normal fitted to them" in site.method


def test_calibrate_site_writes_cutoffs_that_qc_uses(model, tmp_path, capsys):
    site_model = tmp_path / "model" / "model.ckpt"
    site_model.parent.mkdir()
    site_model.write_bytes(model.read_bytes())
    reference = {"sigma_r": 0.04, "sigma_s": 0.4, "blur": 0.0}
    Cutoffs(0.05, 0.5, 1.0, (0.0, 0.0, 0.0), "test", reference).save(site_model.parent / "cutoffs.json")
    scans = tmp_path / "site"
    for index in range(5):
        write(scans / f"s{index}.nii.gz", make_phantom(40, seed=index)[0, 0].numpy() * 900)
    before = digest(scans)
    site_file = tmp_path / "site_cutoffs.json"
    assert main(["calibrate-site", str(scans), "--out", str(site_file), "--site", "B", "--model", str(site_model)]) == 0
    assert digest(scans) == before and "--cutoffs" in capsys.readouterr().out
    site = Cutoffs.load(site_file)
    settings = load_model(site_model).preprocessing
    prepared = [preprocess(ScanRecord(p.name, p), settings) for p in sorted(scans.glob("*.nii.gz"))]
    profile = np.mean([axis_sharpness(scan.image[0], scan.head[0]) for scan in prepared], axis=0)
    assert site.sharpness == pytest.approx(tuple(profile), abs=1e-5)  # blur against the site's own profile
    assert "moved to B by the medians of 5 clean scans" in site.method
    assert site.sigma_r - site.reference["sigma_r"] == pytest.approx(0.05 - reference["sigma_r"])  # same distance
    out = tmp_path / "out"
    assert main(["qc", str(scans / "s0.nii.gz"), "--out", str(out), "--model", str(site_model),
                 "--cutoffs", str(site_file)]) == 0
    assert Cutoffs.from_dict(json.loads((out / "qc.json").read_text())["cutoffs"]) == site
    assert site.model_sha256 == model_hash(site_model)
    other = tmp_path / "other" / "model.ckpt"  # another model: the site's cut-offs are not its own
    other.parent.mkdir()
    checkpoint = torch.load(site_model, weights_only=True)
    torch.save(checkpoint | {"global_step": checkpoint["global_step"] + 1}, other)
    shutil.copy(site_model.parent / "cutoffs.json", other.parent)
    assert main(["qc", str(scans / "s0.nii.gz"), "--out", str(tmp_path / "other_out"), "--model", str(other),
                 "--cutoffs", str(site_file)]) == 2
    assert "moved to a site for the model with sha256" in capsys.readouterr().err
    assert not (tmp_path / "other_out" / "qc.json").exists()
    assert main(["calibrate-site", str(scans / "s0.nii.gz"), "--out", str(tmp_path / "few.json"),
                 "--model", str(site_model)]) == 2
    assert "1 clean scans of the new site" in capsys.readouterr().err and not (tmp_path / "few.json").exists()
    assert main(["calibrate-site", str(scans), "--out", str(tmp_path / "old.json"), "--model", str(model)]) == 2
    assert "no clean reference" in capsys.readouterr().err  # the fixture's cut-offs predate the reference
    assert main(["calibrate-site", str(scans), "--out", str(tmp_path), "--model", str(site_model)]) == 2
    assert "is a folder" in capsys.readouterr().err
    # Cut-offs shipped before the reference was stored: it comes from the calibration table beside them.
    Cutoffs(0.05, 0.5, 1.0, (0.0, 0.0, 0.0), "test").save(site_model.parent / "cutoffs.json")
    pd.DataFrame({"variant": ["clean", "clean", "clean", "noise"], "sigma_r": [0.03, 0.04, 0.05, 0.5],
                  "sigma_s": [0.3, 0.4, 0.5, 0.9], "blur": [0.0, 0.0, 0.0, 0.2]}).to_csv(
        site_model.parent / "validation_scores.csv", index=False)
    assert main(["calibrate-site", str(scans), "--out", str(tmp_path / "again.json"), "--model", str(site_model)]) == 0
    again = Cutoffs.load(tmp_path / "again.json")
    assert again.sigma_r == pytest.approx(site.sigma_r) and again.sigma_s == pytest.approx(site.sigma_s)


def test_a_checkpoint_is_evaluated_on_scans_prepared_its_own_way(model, tmp_path):
    from hetero_qc.evaluation.experiment import trained

    checkpoint = torch.load(model, weights_only=True)
    checkpoint["hyper_parameters"]["preprocessing"]["head_median"] = 0.4  # not the cpu profile's setting
    torch.save(checkpoint, tmp_path / "model.ckpt")
    scans = trained("cpu", "multitask", 1, checkpoint=tmp_path / "model.ckpt").val_scans
    assert [float(s.image[s.head].median()) for s in scans] == pytest.approx([0.4], abs=1e-3)


def test_a_checkpoint_is_scored_with_the_data_config_of_its_own_kind(model, tmp_path):
    """Fig 4 asks for the ``recon`` model; given multitask_long's checkpoint under the ``long`` profile,
    which has no recon experiment, it reads the scans of multitask_long's data config instead of failing."""
    from hetero_qc.evaluation.experiment import trained

    with pytest.raises(ValueError, match="no experiment 'recon_long'"):
        trained("long", "recon", 1, cache_dir=tmp_path)
    scored = trained("long", "recon", 1, checkpoint=model, cache_dir=tmp_path)
    assert scored.model.multitask and len(scored.val_scans) == 1 and len(scored.test_scans) == 1


def ball_scan(radius_voxels: int, background: float = 0.0, n: int = 48, spacing: float = 4.0) -> Scan:
    """A ball of tissue on an ``n``³ grid of ``spacing`` mm, in a background of uniform noise up to ``background``."""
    grid = torch.linspace(-n / 2, n / 2, n)
    z, y, x = torch.meshgrid(grid, grid, grid, indexing="ij")
    head = ((x**2 + y**2 + z**2) < radius_voxels**2)[None]
    image = torch.where(head, 0.7, background * torch.rand(head.shape, generator=torch.Generator().manual_seed(0)))
    return Scan("ball", image, head, head, head, False, (spacing,) * 3, np.eye(4))


def test_skull_stripped_scans_are_a_brain_sized_head_in_a_zero_background():
    brain, whole_head = ball_scan(16), ball_scan(22)  # 1.1 L and 2.9 L
    assert looks_skull_stripped(brain) and not looks_skull_stripped(whole_head)
    assert not looks_skull_stripped(ball_scan(16, background=0.05))  # a small head in a scanner's noise


def test_a_skull_stripped_scan_is_judged_with_its_own_cutoffs(model, tmp_path):
    # The model's cut-offs exclude everything; those for skull-stripped scans keep everything.
    judge = tmp_path / "model" / "model.ckpt"
    judge.parent.mkdir()
    judge.write_bytes(model.read_bytes())
    keep = Cutoffs(10.0, 10.0, 10.0, (0.0, 0.0, 0.0), "moved to skull-stripped scans")
    Cutoffs(0.0, 0.0, 0.0, (0.0, 0.0, 0.0), "test", skull_stripped=keep).save(judge.parent / "cutoffs.json")
    inputs = tmp_path / "in"
    write(inputs / "stripped.nii.gz", head())  # a phantom head in a zero background: 0.2 L
    noisy = head() + np.random.default_rng(0).uniform(0, 40, (40, 40, 40))
    write(inputs / "whole.nii.gz", noisy)
    out = tmp_path / "out"
    assert main(["qc", str(inputs), "--out", str(out), "--model", str(judge)]) == 0
    table = pd.read_csv(out / "qc.csv").set_index("scan")
    assert table.loc["stripped", "skull_stripped"] and table.loc["stripped", "verdict"] == OK
    assert not table.loc["whole", "skull_stripped"] and table.loc["whole", "verdict"] == EXCLUDE
    saved = Cutoffs.from_dict(json.loads((out / "qc.json").read_text())["cutoffs"])
    assert saved.skull_stripped == keep  # the nested cut-offs survive the round trip
    assert "judged with the cut-offs moved to skull-stripped scans" in (out / "report.html").read_text()


def test_thick_slices_come_from_the_header_against_the_models_grid():
    assert thick_slices((1.0, 1.0, 3.0), (2.0, 2.0, 2.0)) and thick_slices((2.0, 3.0, 2.0), (2.0,))
    assert not thick_slices((0.94, 0.94, 1.2), (2.0,)) and not thick_slices((2.4, 2.0, 2.0), (2.0,))
    assert thick_slices((1.0, 1.0, 1.5), (1.0,))  # on a 1 mm model's grid, 1.5 mm slices are thick
    scores = ScanScores(0.1, 0.5, 0.3)
    blurred = ScoredScan("s", scores, BLURRED, {}, slice_mm=3.0, thick_slices=True)
    assert blurred.note.startswith("3 mm slices (its header): blurred by its acquisition")
    assert "may be why" in ScoredScan("s", scores, EXCLUDE, {}, slice_mm=3.0, thick_slices=True).note
    assert ScoredScan("s", scores, BLURRED, {}, slice_mm=1.0).note == ""  # blurred at 1 mm: no excuse in the header


def test_the_tool_says_when_a_scans_own_slices_blur_it(model, tmp_path):
    # Cut-offs that call every scan blurred: the note tells thick slices' blur from a fine scan's. The tiny
    # model's grid is 6 mm (tests/test_train.py), so slices over 7.5 mm are thick there.
    judge = tmp_path / "model" / "model.ckpt"
    judge.parent.mkdir()
    judge.write_bytes(model.read_bytes())
    Cutoffs(10.0, 10.0, -10.0, (0.0, 0.0, 0.0), "test").save(judge.parent / "cutoffs.json")
    inputs = tmp_path / "in"
    write(inputs / "thick.nii.gz", head(), zooms=(2.0, 2.0, 8.0))
    write(inputs / "fine.nii.gz", head())
    out = tmp_path / "out"
    assert main(["qc", str(inputs), "--out", str(out), "--model", str(judge)]) == 0
    table = pd.read_csv(out / "qc.csv", keep_default_na=False).set_index("scan")
    assert (table["verdict"] == BLURRED).all()
    assert table.loc["thick", "slice_mm"] == 8.0 and table.loc["thick", "thick_slices"]
    assert table.loc["thick", "note"].startswith("8 mm slices (its header): blurred by its acquisition")
    assert table.loc["fine", "slice_mm"] == 2.0 and not table.loc["fine", "thick_slices"] and table.loc["fine", "note"] == ""
    assert "8 mm slices (its header)" in (out / "report.html").read_text()
