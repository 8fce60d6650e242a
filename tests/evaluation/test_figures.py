"""The figure scripts' summaries, on hand-made tables (no model needed)."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

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
