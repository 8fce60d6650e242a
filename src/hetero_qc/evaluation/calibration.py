"""Uncertainty calibration beyond the paper: sparsification and AUSE, UCE, coverage, NLL, sigma scaling.

All take flat voxel arrays of absolute errors ``|mean - clean|`` and predicted ``sigma``.
"""

from __future__ import annotations

import numpy as np


def sparsification(error: np.ndarray, sigma: np.ndarray, steps: int = 50) -> dict[str, np.ndarray]:
    """RMSE of the voxels left after removing the fraction ``f`` with the highest sigma (``curve``) and
    with the highest error (``oracle``), for ``f`` in ``[0, 1)``."""
    fractions = np.linspace(0, 1, steps, endpoint=False)
    error = np.abs(error.astype(np.float64))
    squared = error**2

    def curve(order: np.ndarray) -> np.ndarray:
        kept = squared[order]  # ascending by the ranking score: drop from the end
        cumulative = np.cumsum(kept)
        n = len(kept)
        counts = np.maximum(1, np.round(n * (1 - fractions)).astype(int))
        return np.sqrt(cumulative[counts - 1] / counts)

    return {"fraction": fractions, "curve": curve(np.argsort(sigma, kind="stable")),
            "oracle": curve(np.argsort(error, kind="stable"))}


def ause(spars: dict[str, np.ndarray]) -> float:
    """Area between the sparsification curve and its oracle, normalised by the full-data RMSE."""
    gap = (spars["curve"] - spars["oracle"]) / spars["curve"][0]
    return float(np.trapezoid(gap, spars["fraction"]))


def uce(error: np.ndarray, sigma: np.ndarray, bins: int = 20) -> float:
    """Uncertainty calibration error: over equal-count bins of predicted variance, the count-weighted
    mean of |mean squared error - mean predicted variance| (Laves et al. 2020)."""
    variance = sigma.astype(np.float64) ** 2
    order = np.argsort(variance)
    total = 0.0
    for chunk in np.array_split(order, bins):
        total += len(chunk) * abs(np.mean(error[chunk].astype(np.float64) ** 2) - np.mean(variance[chunk]))
    return float(total / len(error))


def coverage(error: np.ndarray, sigma: np.ndarray, k: float) -> float:
    """Fraction of voxels with ``|error| <= k sigma`` (a calibrated Gaussian: 0.683 at 1, 0.954 at 2)."""
    return float(np.mean(np.abs(error) <= k * sigma))


def gaussian_nll(error: np.ndarray, sigma: np.ndarray) -> float:
    """Mean Gaussian negative log-likelihood per voxel (constant included)."""
    variance = sigma.astype(np.float64) ** 2
    return float(np.mean(0.5 * np.log(2 * np.pi * variance) + 0.5 * error.astype(np.float64) ** 2 / variance))


def fit_sigma_scale(error: np.ndarray, sigma: np.ndarray) -> float:
    """The factor ``c`` minimising the Gaussian NLL of ``c * sigma``: ``c^2 = mean(error^2 / sigma^2)``."""
    return float(np.sqrt(np.mean((error.astype(np.float64) / sigma) ** 2)))


def calibration_report(error: np.ndarray, sigma: np.ndarray) -> dict[str, float]:
    """Every calibration number for one set of voxels."""
    return {"ause": ause(sparsification(error, sigma)), "uce": uce(error, sigma),
            "coverage_1sigma": coverage(error, sigma, 1.0), "coverage_2sigma": coverage(error, sigma, 2.0),
            "nll": gaussian_nll(error, sigma)}
