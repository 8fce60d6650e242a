import numpy as np
import pytest

from hetero_qc.evaluation.calibration import (
    ause,
    calibration_report,
    coverage,
    fit_sigma_scale,
    sparsification,
    uce,
)
from hetero_qc.evaluation.stats import (
    auroc_mann_whitney,
    paired_relative_change,
    pearson_r,
)

rng = np.random.default_rng(0)
SIGMA = rng.uniform(0.01, 0.2, 200_000)
ERROR = rng.normal(0, SIGMA)  # perfectly calibrated by construction


def test_calibrated_predictions_score_as_calibrated():
    report = calibration_report(ERROR, SIGMA)
    assert report["coverage_1sigma"] == pytest.approx(0.683, abs=0.01)
    assert report["coverage_2sigma"] == pytest.approx(0.954, abs=0.01)
    assert report["uce"] < 0.02 * np.mean(SIGMA**2) * 10
    assert fit_sigma_scale(ERROR, SIGMA) == pytest.approx(1.0, abs=0.01)


def test_scaled_sigma_is_recovered_and_miscalibration_measured():
    assert fit_sigma_scale(ERROR, SIGMA / 3) == pytest.approx(3.0, rel=0.01)
    assert coverage(ERROR, SIGMA / 3, 1.0) < 0.35
    assert uce(ERROR, SIGMA / 3) > 5 * uce(ERROR, SIGMA)


def test_sparsification_oracle_bounds_the_curve():
    informative = ause(sparsification(ERROR, SIGMA))
    random = ause(sparsification(ERROR, rng.permutation(SIGMA)))
    spars = sparsification(ERROR, SIGMA)
    assert np.all(spars["oracle"] <= spars["curve"] + 1e-12)
    assert 0 < informative < random


def test_summary_statistics():
    x = np.arange(10.0)
    assert pearson_r(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson_r(x, 1 - 3 * x) == pytest.approx(-1.0)
    assert auroc_mann_whitney(np.array([5.0, 6, 7]), np.array([1.0, 2, 3]))[0] == 1.0
    change, p = paired_relative_change(np.array([1.0, 2, 4, 5, 6, 8]), np.array([1.5, 3, 6, 7.5, 9, 12]))
    assert change == pytest.approx(0.5) and p < 0.05
