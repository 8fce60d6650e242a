"""The figure scripts' summaries, on hand-made tables (no model needed)."""

import importlib.util
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from hetero_qc.models import MultiTaskNet, UNetConfig
from hetero_qc.paths import REPO_ROOT


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fig3_summary_counts_falling_sigma_and_worse_reconstructions():
    fig3 = load_script("fig3")
    sigma = np.linspace(0.1, 0.5, 5)
    rising = pd.DataFrame({"subject": "a", "sigma_median": sigma, "recon_error": 2 * sigma,
                           "input_error": 2 * sigma + 0.1})
    falling = pd.DataFrame({"subject": "b", "sigma_median": sigma, "recon_error": 1 - sigma,
                            "input_error": 0.6})  # worse than the input at the first three levels
    summary, per_subject = fig3.summarise(pd.concat([rising, falling]))
    assert summary["r2_mean"] == pytest.approx(1.0) and summary["n_subjects"] == 2
    assert summary["n_sigma_falls_with_error"] == 1
    assert summary["n_recon_worse_than_input"] == 3
    assert per_subject.set_index("subject").loc["b", "pearson_r"] == pytest.approx(-1.0)


def test_fig4_summary_gives_the_auroc_of_sigma_and_of_blur_per_artefact_and_severity():
    fig4 = load_script("fig4")
    clean = pd.DataFrame({"artefact": "clean", "severity": "none", "sigma_r": [0.1, 0.2, 0.3],
                          "blur": [0.05, 0.06, 0.07]})
    motion = pd.DataFrame({"artefact": "motion", "severity": "moderate", "sigma_r": [0.05, 0.06, 0.15],
                           "blur": [0.3, 0.4, 0.5]})
    summary = fig4.summarise(pd.concat([clean, motion]))
    assert summary["n_subjects"] == 3
    assert summary["auroc"]["motion"]["moderate"] == pytest.approx(1 / 9)  # one pair of nine ranks higher
    assert summary["auroc_blur"]["motion"]["moderate"] == pytest.approx(1.0)
    assert 0 < summary["mann_whitney_p_blur"]["motion"]["moderate"] < 0.2


def _scores(variant: str, subject: str, good: float, bad: float, damaged: bool, **extra) -> dict:
    """One copy's row: ``sigma_s`` rises with damage (``good``), ``sigma_s_head`` does not (``bad``)."""
    return {"subject": subject, "variant": variant, "sigma_r": 0.1, "blur": 0.0, "sigma_s": good,
            "sigma_s_head": bad, "damaged": damaged, "error_doubled": False,
            "sharpness_0": 0.0, "sharpness_1": 0.0, "sharpness_2": 0.0, **extra}


def test_sigma_s_choice_calibrates_each_candidate_and_judges_it_on_test_and_sites():
    choice = load_script("sigma_s_choice")
    rows = []
    for i in range(8):
        rows += [_scores("clean", f"v{i}", 1.0 + 0.01 * i, 1.0, False),
                 _scores("noise", f"v{i}", 2.0, 1.0 - 0.01 * i, True),
                 _scores("motion", f"v{i}", 1.0, 1.0, False)]
    table = pd.DataFrame(rows)
    test = table.copy()
    test.loc[test["variant"] == "clean", "sigma_s"] = 1.8  # over the cut-off (1.535): every clean test scan excluded
    # noise outside the brain: sigma_s the same whether the drop passed the threshold or not (4 and 4,
    # 16 tied pairs of the 12 x 20)
    test = pd.concat([test, pd.DataFrame([_scores("partial_noise_outside_brain", f"v{i}", 1.9, 1.0, i % 2 == 0)
                                          for i in range(8)])], ignore_index=True)
    sites = pd.DataFrame([_scores("clean", "IXI", 1.0, 1.0, False, group="ixi_test")]
                         + [_scores("clean", f"Subj{i}", 1.2 + 0.01 * i, 2.0, False, group="nichart") for i in range(1, 9)]
                         + [_scores("clean", "afni", 3.0, 3.0, False, group="single")])
    good = choice.judge("sigma_s", table, test, sites, (0.0, 0.0, 0.0))
    bad = choice.judge("sigma_s_head", table, test, sites, (0.0, 0.0, 0.0))
    assert good["auroc_dice_drop_validation"] == pytest.approx(1.0) and bad["auroc_dice_drop_validation"] < 0.1
    assert good["cutoff"] == pytest.approx((1.07 + 2.0) / 2)  # Youden: between the clean and damaged scores
    assert good["auroc_dice_drop_test"] == pytest.approx(1 - 8 / (12 * 20))
    assert good["auroc_dice_drop_test_without_outside_brain"] == pytest.approx(1.0)
    assert good["test_kept"]["clean"] == "0 of 8"
    assert good["sites_median_over_ixi"]["nichart"] == pytest.approx(1.245)
    assert good["single_over_ixi"] == {"afni": pytest.approx(3.0)}
    assert good["sites_excluded_ixi_cutoffs"]["single"] == 1.0
    # moved by NiChart's first 5 clean scans, the cut-off keeps its distance from their median: none of
    # the other three is flagged
    assert good["sites_flagged_moved_cutoffs"]["nichart_others"] == 0.0


def test_sites_pools_the_clean_scans_as_a_user_would_judge_them():
    sites = load_script("sites")
    calibrated = {"nichart": {"n_scans": 15, "n_flagged": 1}, "nichart_held_out": {"n_scans": 3, "n_flagged": 0}}
    single = pd.DataFrame({"subject": ["thin", "thick", "thin_ok", "thick", "thin"],
                           "variant": ["clean", "clean", "clean", "noise", "noise"],
                           "verdict": ["exclude", "blurred", "ok", "exclude", "exclude"]})
    user = sites.as_a_user_would(calibrated, single, ["thick"])
    # 1 NiChart scan under its site's cut-offs, and 2 of the 3 clean single scans; corrupted rows do not count
    assert (user["n_scans"], user["flagged"]) == (21, 3)
    assert user["flagged_share"] == pytest.approx(3 / 21)
    assert user["flagged_share_without_thick_slices"] == pytest.approx(2 / 20)


def test_norm_statistics_replays_another_windows_instance_statistics():
    script = load_script("norm_statistics")
    torch.manual_seed(0)
    tiny = UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2))
    net = MultiTaskNet(tiny).eval()
    hooks = script.WindowStatistics(net)
    clean = torch.rand(1, 1, 16, 16, 32)
    noisy = clean.clone()
    noisy[..., 24:] += 3 * torch.rand(1, 1, 16, 16, 8)
    roi = (16, 16, 16)
    plain = script.segment(net, roi, clean, hooks)
    assert len(hooks.norms) >= 10 and hooks.mode is None
    torch.testing.assert_close(script.segment(net, roi, clean, hooks, statistics_from=clean), plain)
    moved = script.segment(net, roi, clean, hooks, statistics_from=noisy)
    assert (moved - plain).abs().max() > 1e-3  # the noise's statistics alone change the clean scan's logits
    fixed = MultiTaskNet(replace(tiny, norm="fixed")).eval()
    fixed_hooks = script.WindowStatistics(fixed)
    assert fixed_hooks.norms == []
    torch.testing.assert_close(script.segment(fixed, roi, clean, fixed_hooks, statistics_from=noisy),
                               script.segment(fixed, roi, clean, fixed_hooks))
