"""The damage evaluation: its table from a (tiny, untrained) network, and its summary on a hand-made table."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from hetero_qc.corruption import RandomMotion, RandomPartialNoise, RandomRicianNoise
from hetero_qc.data import Preprocessing, Scan
from hetero_qc.data.augmentation import skull_strip
from hetero_qc.evaluation.damage import SHARPNESS, Preprocessed, damage_table, damage_variants, summarise, verdicts
from hetero_qc.evaluation.experiment import Trained
from hetero_qc.inference import TrainedModel
from hetero_qc.models.networks import MultiTaskNet
from hetero_qc.models.unet import UNetConfig
from hetero_qc.qc.scoring import axis_sharpness
from hetero_qc.qc.verdict import BLURRED, EXCLUDE, OK, Cutoffs
from tests.conftest import make_phantom, two_tissues


def phantom_scan(seed: int) -> Scan:
    image = make_phantom(32, seed)[0]
    return Scan(f"s{seed}", image, image > 0.05, image > 0.3, (image > 0.3) & (image < 0.7), True,
                (2.0, 2.0, 2.0), np.eye(4))


def test_damage_table_scores_every_copy_against_its_clean_scan():
    torch.manual_seed(0)
    net = MultiTaskNet(UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2)))
    model = Trained(TrainedModel(net.eval(), Path("tiny.ckpt"), 0, None, None, None, None), [], [])
    variants = {"noise": {"severe": RandomRicianNoise(snr_db=-5.0)},
                "motion": {"moderate": RandomMotion(degrees=5.0, translation=5.0)},
                "partial_noise": {"outside_brain": RandomPartialNoise(snr_db=-5.0, region="outside_mask")}}
    scans = [phantom_scan(0), phantom_scan(1)]
    table = damage_table(model, scans, variants, (0.0, 0.0, 0.0), seed=3)
    assert len(table) == 2 * 4 and list(table["variant"].unique()) == [
        "clean", "noise_severe", "motion_moderate", "partial_noise_outside_brain"]
    clean = table[table["variant"] == "clean"]
    np.testing.assert_allclose(clean["error_ratio"], 1.0)
    np.testing.assert_allclose(clean["dice_drop"], 0.0)
    assert (clean["input_rmse"] == 0).all() and not clean["damaged"].any()
    noisy = table[table["variant"] == "noise_severe"]
    assert (noisy["input_rmse"] > 0.3).all()  # -5 dB: noise sigma 1.8x the foreground mean
    assert table[["sigma_r", "sigma_s", "sigma_s_cortex", "sigma_s_head", "sigma_s_band", "blur", "recon_rmse", "dice"]].notna().all().all()
    assert table["dice"].between(0, 1).all()
    profile = (0.05, -0.1, 0.02)  # blur against any profile, from the table's sharpness alone
    other = damage_table(model, scans[:1], {}, profile)
    np.testing.assert_allclose((np.array(profile) - other[list(SHARPNESS)].to_numpy()).max(axis=1), other["blur"], atol=1e-6)
    np.testing.assert_allclose(other[list(SHARPNESS)], table.loc[[0], list(SHARPNESS)], atol=1e-6)
    again = damage_table(model, scans, variants, (0.0, 0.0, 0.0), seed=3)
    pd.testing.assert_frame_equal(table, again)  # seeded: the same copies every run


def test_damage_variants_compose_the_config_with_overrides():
    variants = damage_variants(overrides=["artefacts.noise.severe.snr_db=-7", "training_mix=false", "preprocess_copies=false"])
    assert set(variants) == {"motion", "ghosting", "spike", "bias_field", "noise", "partial_noise"}
    assert variants["noise"]["severe"].snr_db == (-7.0, -7.0)
    assert variants["partial_noise"]["cortex_box"].box == (0.6, 0.3, 0.55, 0.95, 0.7, 0.85)
    assert set(variants["motion"]) == {"mild", "moderate", "severe"}
    quick = damage_variants(overrides=["levels=[moderate,cortex_box]", "training_mix=false", "preprocess_copies=false"])
    assert {a: list(levels) for a, levels in quick.items()} == {
        a: ["moderate"] for a in ("motion", "ghosting", "spike", "bias_field", "noise")} | {"partial_noise": ["cortex_box"]}


def hand_made() -> pd.DataFrame:
    """Four subjects; sigma_r rises with the error except for one swapped pair; sigma_s marks the two
    copies whose Dice fell."""
    rows = []
    for i in range(4):
        clean_dice = 0.8
        rows += [
            {"subject": i, "artefact": "clean", "severity": "none", "variant": "clean", "sigma_r": 0.10 + 0.001 * i,
             "sigma_s": 0.20, "blur": 0.0, "sigma_s_cortex": 0.0, "recon_rmse": 0.010 + 0.0001 * i,
             "dice": clean_dice},
            {"subject": i, "artefact": "motion", "severity": "moderate", "variant": "motion_moderate",
             "sigma_r": 0.30 + 0.001 * i, "sigma_s": 0.5 if i < 2 else 0.21, "blur": 0.3, "sigma_s_cortex": 0.0,
             "recon_rmse": 0.030 + 0.0001 * i, "dice": 0.7 if i < 2 else 0.79},
            {"subject": i, "artefact": "partial_noise", "severity": "outside_brain",
             "variant": "partial_noise_outside_brain", "sigma_r": 0.15 + 0.001 * i, "sigma_s": 0.19, "blur": 0.0,
             "sigma_s_cortex": 0.0, "recon_rmse": 0.012 + 0.0001 * i, "dice": 0.8},
            {"subject": i, "artefact": "partial_noise", "severity": "outside_brain_10mm",
             "variant": "partial_noise_outside_brain_10mm", "sigma_r": 0.15 + 0.001 * i, "sigma_s": 0.4 if i else 0.2,
             "blur": 0.0, "sigma_s_cortex": 0.0, "recon_rmse": 0.012 + 0.0001 * i, "dice": 0.77},
        ]
    table = pd.DataFrame(rows)
    clean = table[table["variant"] == "clean"].set_index("subject")
    table["error_ratio"] = table["recon_rmse"] / table["subject"].map(clean["recon_rmse"])
    table["error_doubled"] = table["error_ratio"] >= 2
    table["dice_drop"] = table["subject"].map(clean["dice"]) - table["dice"]
    table["damaged"] = table["dice_drop"] > 0.05
    return table


def test_damage_summary_numbers_and_targets():
    cutoffs = Cutoffs(sigma_r=0.2, sigma_s=0.3, blur=1.0, sharpness=(0.0, 0.0, 0.0))
    summary = summarise(hand_made(), cutoffs)
    assert summary["n_subjects"] == 4 and summary["n_copies"] == 16
    assert summary["sigma_r_spearman_error"] == pytest.approx(1.0)
    assert summary["sigma_r_auroc_error_doubled"] == pytest.approx(1.0)  # the 4 motion copies
    assert summary["sigma_s_auroc_dice_drop"] == pytest.approx(1.0) and summary["n_dice_drop"] == 2
    # sigma_r ranks the 2 damaged motion copies above 12 of the 14 others (not the other 2 motion copies)
    assert summary["sigma_r_auroc_dice_drop"] == pytest.approx(24 / 28)
    assert summary["scores"]["sigma_r"]["auroc_dice_drop"] == summary["sigma_r_auroc_dice_drop"]
    assert summary["scores"]["sigma_s_cortex"]["auroc_error_doubled"] == pytest.approx(0.5)  # a constant score
    assert np.isnan(summary["scores"]["sigma_s_cortex"]["spearman_error"])
    assert "sigma_s_cortex" not in summarise(hand_made().drop(columns="sigma_s_cortex"))["scores"]  # not in the table
    assert summary["auroc_vs_clean"]["motion"]["moderate"]["sigma_r"] == pytest.approx(1.0)
    assert summary["dice"]["motion_moderate"] == pytest.approx(0.745)
    assert summary["error_ratio_median"]["motion_moderate"] == pytest.approx(3.0, rel=0.02)
    assert summary["verdicts"]["motion_moderate"] == {EXCLUDE: 2, "degraded but usable for CGM segmentation": 2}
    assert summary["verdicts"]["partial_noise_outside_brain"] == {OK: 4}
    targets = summary["targets"]
    assert targets["sigma_r_auroc_vs_clean_motion_moderate"]["met"]  # motion doubles the error
    assert "sigma_r_auroc_vs_clean_partial_noise_outside_brain" not in targets
    assert targets["kept_outside_brain"]["met"] and summary["kept_outside_brain"] == "4 of 4"
    assert targets["dice_drop_outside_brain"] == {"value": 0.0, "target": 0.02, "met": True}
    # the same noise from 10 mm: its own figures beside the edge's (a 0.03 drop, 1 of 4 kept)
    assert targets["dice_drop_outside_brain_10mm"] == {"value": pytest.approx(0.03), "target": 0.02, "met": False}
    assert not targets["kept_outside_brain_10mm"]["met"] and summary["kept_outside_brain_10mm"] == "1 of 4"
    assert not targets["clean_dice"]["met"]  # 0.80 < 0.82


def test_a_skull_stripped_scans_verdict_is_its_own_cutoffs():
    # Base cut-offs exclude sigma_s 0.35; the skull-stripped ones (moved up by their clean median)
    # keep it, and measure blur against their own sharpness profile.
    stripped = Cutoffs(0.1, 0.4, 0.1, (0.2, -0.1, -0.1), "moved to skull-stripped scans")
    cutoffs = Cutoffs(0.1, 0.3, 0.1, (0.0, 0.0, 0.0), "validation", skull_stripped=stripped)
    table = pd.DataFrame({"sigma_r": [0.05] * 4, "sigma_s": [0.35, 0.35, 0.2, 0.2], "blur": [0.0] * 4,
                          "sharpness_0": [0.0, 0.2, 0.2, 0.05], "sharpness_1": [0.0, -0.1, -0.1, -0.05],
                          "sharpness_2": [0.0, -0.1, -0.1, 0.0],  # the last blurred by 0.15 along axis 0
                          "skull_stripped": [False, True, True, True]})
    assert verdicts(table, cutoffs).tolist() == [EXCLUDE, OK, OK, BLURRED]
    assert verdicts(table.drop(columns="skull_stripped"), cutoffs).tolist() == [EXCLUDE, EXCLUDE, OK, OK]


def test_cutoffs_are_read_beside_a_checkpoint_or_calibrated_on_validation(tmp_path):
    from hetero_qc.evaluation.cutoffs import cutoffs_for

    torch.manual_seed(0)
    net = MultiTaskNet(UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2)))
    scans = [phantom_scan(seed) for seed in range(5)]
    model = Trained(TrainedModel(net.eval(), Path("tiny.ckpt"), 0, None, None, None, None), [], scans)
    variants = {"noise": {"severe": RandomRicianNoise(snr_db=-5.0)},
                "motion": {"moderate": RandomMotion(degrees=5.0, translation=5.0)}}
    checkpoint = tmp_path / "run" / "model.ckpt"  # need not exist: only its folder is looked in
    calibrated, source = cutoffs_for(model, checkpoint, variants)
    assert source is None and "on 5 validation scans and 10 corrupted copies" in calibrated.method
    # and moved to the same scans skull-stripped: by the medians of their clean scores
    stripped = calibrated.skull_stripped
    assert stripped is not None and stripped.skull_stripped is None
    assert "moved to skull-stripped scans (the validation scans, stripped) by the medians of 5" in stripped.method
    strip_table = damage_table(model, [skull_strip(scan) for scan in scans], {}, calibrated.sharpness)
    assert stripped.reference["sigma_s"] == pytest.approx(strip_table["sigma_s"].median())
    assert stripped.sigma_s - calibrated.sigma_s == pytest.approx(
        strip_table["sigma_s"].median() - calibrated.reference["sigma_s"])
    assert cutoffs_for(model._replace(val_scans=scans[:4]), checkpoint, variants)[0].skull_stripped is None
    assert set(calibrated.reference) == {"sigma_r", "sigma_s", "blur"}
    assert calibrated.sharpness == pytest.approx(
        tuple(np.mean([axis_sharpness(s.image[0], s.head[0]) for s in scans], axis=0)))
    shipped = Cutoffs(0.1, 1.0, 0.2, (0.0, 0.0, 0.0), "shipped", {"sigma_r": 0.05, "sigma_s": 0.9, "blur": 0.0})
    checkpoint.parent.mkdir()
    shipped.save(checkpoint.parent / "cutoffs.json")
    assert cutoffs_for(model, checkpoint, variants) == (shipped, checkpoint.parent / "cutoffs.json")
    assert cutoffs_for(model, checkpoint, variants, calibrate=True) == (calibrated, None)  # seeded: the same


def test_preprocessed_copies_meet_the_models_own_intensity_preprocessing():
    # Two tissues (0.4 and 0.48, as the N4 test's phantom) under the evaluation's moderate coil field:
    # through the model's own preprocessing (N4, then the head's median at 0.5) the field is taken out
    # of each tissue as it is from a user's scan, and the copy is on the clean scan's scale.
    ball, checker, _ = two_tissues()
    clean = (ball * (0.4 + 0.08 * checker))[None, None].float()
    settings = Preprocessing(head_median=0.5, n4=True)
    model = Trained(TrainedModel(nn.Identity(), Path("m.ckpt"), 0, None, settings, None, None), [], [])
    quick = ["levels=[moderate]", "training_mix=false"]
    raw = damage_variants(model, [*quick, "preprocess_copies=false"])["bias_field"]["moderate"]
    scored = damage_variants(model, quick)["bias_field"]["moderate"]  # the default
    assert isinstance(scored, Preprocessed) and not isinstance(raw, Preprocessed)
    field = raw(clean, (2.0, 2.0, 2.0), torch.Generator().manual_seed(0)).image
    copy = scored(clean, (2.0, 2.0, 2.0), torch.Generator().manual_seed(0)).image
    assert copy.shape == clean.shape and copy.dtype == torch.float32
    low = (ball & ~checker)[None, None]
    high = (ball & checker)[None, None]
    assert float(field[low].log().std()) > 0.1  # measured 0.162
    assert float(copy[low].log().std()) < 0.3 * float(field[low].log().std())  # measured 0.017
    assert float(copy[ball[None, None]].median()) == pytest.approx(0.5, abs=0.02)
    assert float(copy[high].mean() / copy[low].mean()) == pytest.approx(1.2, abs=0.02)  # 1.200
    with pytest.raises(ValueError, match="preprocess_copies=true needs a model"):
        damage_variants(None, quick)


def test_an_interrupted_ship_leaves_the_shipped_files_as_they_were(tmp_path, monkeypatch):
    from hetero_qc.evaluation import cutoffs as cutoffs_module

    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(1)}, "hyper_parameters": {}, "hetero_qc": {}, "global_step": 1},
               checkpoint)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "model.ckpt").write_bytes(b"the old model")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what stopping `make model` during its calibration does

    monkeypatch.setattr(cutoffs_module, "sharpness_profile", lambda scans: (0.0, 0.0, 0.0))
    monkeypatch.setattr(cutoffs_module, "damage_variants", lambda model, overrides: {})
    monkeypatch.setattr(cutoffs_module, "damage_table", interrupted)
    model = Trained(TrainedModel(nn.Identity(), checkpoint, 1, None, None, None, None), [], [])
    with pytest.raises(KeyboardInterrupt):
        cutoffs_module.ship(model, shipped, tmp_path)
    assert (shipped / "model.ckpt").read_bytes() == b"the old model" and sorted(shipped.iterdir()) == [shipped / "model.ckpt"]


def test_cutoffs_calibrate_again_on_copies_already_scored():
    from hetero_qc.evaluation.cutoffs import calibrated

    torch.manual_seed(0)
    net = MultiTaskNet(UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2)))
    scans = [phantom_scan(seed) for seed in range(5)]
    model = Trained(TrainedModel(net.eval(), Path("tiny.ckpt"), 0, None, None, None, None), [], scans)
    variants = {"noise": {"severe": RandomRicianNoise(snr_db=-5.0)}}
    cutoffs, table = calibrated(model, variants)
    again, same = calibrated(model, {}, table=pd.read_csv(io.StringIO(table.to_csv(index=False))))
    assert again == cutoffs and len(same) == 10  # the copies as validation_scores.csv keeps them
    with pytest.raises(ValueError, match="of 4 scans, not of the 5 validation scans"):
        calibrated(model, {}, table=table[table["subject"] != "s4"])
    with pytest.raises(ValueError, match=r"lack the columns \['damaged'\]"):
        calibrated(model, {}, table=table.drop(columns="damaged"))


def test_results_whose_summary_cannot_be_written_leave_the_folder_as_it_was(tmp_path):
    import matplotlib.pyplot as plt

    from hetero_qc.evaluation.experiment import save_results

    table = pd.DataFrame({"variant": ["clean"], "dice": [0.9]})
    save_results(tmp_path, "damage", plt.figure(), table, {"dice": 0.9})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_results(tmp_path, "damage", plt.figure(), table.assign(dice=0.5), {"cutoffs": Cutoffs(0.1, 0.8, 0.1, (0.0,) * 3)})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
