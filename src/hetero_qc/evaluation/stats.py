"""Summary statistics of the figures: R^2 of a linear fit (Pearson r), AUROC with Mann-Whitney, paired change."""

from __future__ import annotations

import numpy as np
from scipy import stats


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of ``y`` and ``x``; its square is the R^2 of the least-squares line of ``y`` on
    ``x``, and its sign says whether ``y`` rises with ``x`` (which R^2 alone hides)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.pearsonr(x, y)[0])


def auroc_mann_whitney(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """AUROC of a score separating ``positive`` from ``negative`` (= U / (n_pos n_neg)), and the
    two-sided Mann-Whitney p-value."""
    result = stats.mannwhitneyu(positive, negative, alternative="two-sided")
    return float(result.statistic / (len(positive) * len(negative))), float(result.pvalue)


def paired_relative_change(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Mean relative change ``(after - before) / before`` and the Wilcoxon signed-rank p-value."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    change = float(np.mean((after - before) / before))
    p = float(stats.wilcoxon(after, before).pvalue) if len(before) > 1 and np.any(after != before) else 1.0
    return change, p
