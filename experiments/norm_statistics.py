"""Does noise away from the cortex reach it through the instance norms' statistics?

An instance norm normalises each channel by its mean and variance over the whole window, so noise
outside the brain, which changes those statistics, changes every feature inside the brain with them,
however far the noise is. Per test scan, clean and under the noise outside the brain of
``conf/damage.yaml`` (as the damage evaluation makes the copies, through the model's preprocessing),
the CGM Dice of:

- ``copy``: the corrupted copy, as predicted;
- ``clean_with_copy_statistics``: the *clean* scan, each window normalised by the statistics of the
  corrupted copy's same window (recorded by forward hooks on every instance norm, then replayed).
  The input holds no noise, so what this loses is the statistics' doing alone.

Both in the model's windows (25% overlap), without the mirrored pass, so the two differ only by what
they measure. A network with fixed norms (``model.net.unet.norm=fixed``) has no instance norms, and
its two columns for the clean scan coincide.

    python experiments/norm_statistics.py [--checkpoint src/hetero_qc/shipped/model.ckpt] [--max-subjects 4]
                                          [OVERRIDE ...]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from torch import Tensor, nn

from hetero_qc.evaluation.damage import damage_variants, variant_name
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.metrics import dice, predicted_cgm
from hetero_qc.models.networks import output_channels, split_channels
from hetero_qc.paths import MODEL_DIR

LEVELS = ["levels=[outside_brain,outside_brain_10mm]", "training_mix=false"]


class WindowStatistics:
    """Forward hooks on every instance norm of ``net``: in ``record`` mode each keeps the per-channel
    statistics of the window it normalises; in ``replay`` mode it normalises the next window by the
    recorded ones in place of its own (one window at a time, ``(1, C, D, H, W)``)."""

    def __init__(self, net: nn.Module) -> None:
        self.mode: str | None = None
        self.statistics: dict[nn.Module, tuple[Tensor, Tensor]] = {}
        self.norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm3d)]
        for norm in self.norms:
            norm.register_forward_hook(self._hook)

    def _hook(self, module: nn.InstanceNorm3d, args: tuple[Tensor], output: Tensor) -> Tensor | None:
        x = args[0]
        if self.mode == "record":
            self.statistics[module] = (x.mean((0, 2, 3, 4)), x.var((0, 2, 3, 4), unbiased=False))
        elif self.mode == "replay":
            mean, var = self.statistics[module]
            return F.batch_norm(x, mean, var, module.weight, module.bias, False, 0.0, module.eps)
        return None


@torch.no_grad()
def segment(net: nn.Module, roi: tuple[int, int, int], image: Tensor, hooks: WindowStatistics,
            statistics_from: Tensor | None = None) -> Tensor:
    """CGM segmentation logits of ``image`` ``(1, 1, D, H, W)`` window by window; with
    ``statistics_from`` (same shape), each window normalised by that image's window's statistics."""

    def window(x: Tensor) -> Tensor:
        if statistics_from is None:
            return output_channels(net(x)).float()
        hooks.mode = "record"
        net(x[:, 1:])
        hooks.mode = "replay"
        try:
            return output_channels(net(x[:, :1])).float()
        finally:
            hooks.mode = None

    x = image if statistics_from is None else torch.cat([image, statistics_from], 1)
    out = sliding_window_inference(x, roi, 1, window, overlap=0.25, mode="gaussian")
    return split_channels(out, True).seg_logits


def plot(table: pd.DataFrame) -> plt.Figure:
    """Per noise variant, the CGM Dice drop from the clean scan of the copy and of the clean scan
    normalised by the copy's statistics, one point per scan."""
    variants = list(table["variant"].unique())
    figure, ax = plt.subplots(figsize=(6, 4))
    for i, (column, label) in enumerate([("drop_copy", "the noisy copy"),
                                         ("drop_clean_with_copy_statistics", "clean scan, copy's norm statistics")]):
        for j, variant in enumerate(variants):
            values = table.loc[table["variant"] == variant, column]
            ax.scatter(np.full(len(values), j + (i - 0.5) * 0.25), values, color=plt.cm.tab10.colors[i],
                       label=label if j == 0 else None)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(variants)), variants, fontsize=8)
    ax.set(ylabel="CGM Dice drop from the clean scan")
    ax.legend(fontsize=8)
    figure.suptitle("Noise outside the brain through the instance norms' statistics (test)", fontsize=10)
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results/norm_statistics", str(MODEL_DIR / "model.ckpt"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/damage.yaml")
    args = parser.parse_args()
    model = trained(args.profile, "multitask", args.max_subjects, checkpoint=args.checkpoint)
    if not model.model.multitask:
        raise SystemExit(f"norm_statistics: error: {args.checkpoint} is a reconstruction-only model; the CGM Dice "
                         "needs a multi-task checkpoint")
    net, roi = model.net.eval(), model.model.roi_size
    hooks = WindowStatistics(net)
    variants = damage_variants(model, [*LEVELS, *args.overrides])
    rows = []
    for index, scan in enumerate(model.test_scans):
        clean, labels = scan.image[None], scan.cgm[None]
        generator = torch.Generator().manual_seed(args.seed + index)
        clean_dice = float(dice(predicted_cgm(segment(net, roi, clean, hooks)), labels))
        for artefact, levels in variants.items():
            for severity, transform in levels.items():
                copy = transform(clean, scan.spacing, generator, scan.brain[None]).image
                rows.append({
                    "subject": scan.subject, "variant": variant_name(artefact, severity), "dice_clean": clean_dice,
                    "dice_copy": float(dice(predicted_cgm(segment(net, roi, copy, hooks)), labels)),
                    "dice_clean_with_copy_statistics": float(dice(predicted_cgm(
                        segment(net, roi, clean, hooks, statistics_from=copy)), labels)),
                })
    table = pd.DataFrame(rows)
    for column in ("copy", "clean_with_copy_statistics"):
        table[f"drop_{column}"] = table["dice_clean"] - table[f"dice_{column}"]
    medians = table.groupby("variant", sort=False)[
        ["dice_clean", "dice_copy", "dice_clean_with_copy_statistics"]].median()
    summary = {"checkpoint": str(args.checkpoint), "n_subjects": len(model.test_scans), "split": "test",
               "instance_norms": len(hooks.norms), "median_cgm_dice": medians.round(4).to_dict(orient="index")}
    save_results(Path(args.out), "norm_statistics", plot(table), table, summary)
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
