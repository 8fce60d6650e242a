"""Fig 5 and 7: map panels of one test scan.

Fig 5: the reconstruction model on the scan with moderate simulated motion (input, reconstruction,
sigma). Fig 7: the multi-task model on the scan with partial noise outside the brain (input,
reconstruction, sigma_r, CGM segmentation, sigma_s).

    python experiments/fig5.py [--profile cpu|paper]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from hetero_qc.config import severities
from hetero_qc.evaluation.experiment import figure_parser, save_results, trained
from hetero_qc.evaluation.predictions import partial_noise, predict_copies, scan_summary
from hetero_qc.inference import sigma


def panel(maps: dict[str, torch.Tensor], title: str) -> plt.Figure:
    figure, axes = plt.subplots(2, len(maps), figsize=(3 * len(maps), 6))
    for column, (name, volume) in enumerate(maps.items()):
        v = volume[0, 0].float()
        cmap = "magma" if "sigma" in name else "gray"
        axes[0, column].imshow(v[v.shape[0] // 2].T, cmap=cmap, origin="lower")
        axes[1, column].imshow(v[:, :, v.shape[2] // 2 + 8].T, cmap=cmap, origin="lower")
        axes[0, column].set_title(name)
        for ax in axes[:, column]:
            ax.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def main() -> None:
    parser = figure_parser(__doc__, "results")
    parser.add_argument("--subject", type=int, default=0, help="index into the test split")
    args = parser.parse_args()

    recon = trained(args.profile, "recon", args.max_subjects, args.checkpoint)
    scan = recon.test_scans[args.subject]
    moved = severities()["motion"]["moderate"](scan.image[None], scan.spacing,
                                                   torch.Generator().manual_seed(args.seed)).image
    (copy,) = predict_copies(recon.model, moved, ["motion"])
    maps = {"input (motion)": moved, "reconstruction": copy.out.mean, "sigma": sigma(copy.out.log_var)}
    save_results(Path(args.out) / "fig5", "fig5", panel(maps, f"{scan.subject}: reconstruction model, simulated motion"),
                 pd.DataFrame([scan_summary(scan, copy)]), {"subject": scan.subject, "artefact": "motion 5 deg / 5 mm"})

    multitask = trained(args.profile, "multitask", args.max_subjects, args.checkpoint)
    scan = multitask.test_scans[args.subject]
    noisy = partial_noise(scan.image[None], scan.brain[None], "outside_brain", -5.0, args.seed)
    (copy,) = predict_copies(multitask.model, noisy, ["partial"])
    maps = {"input (partial noise)": noisy, "reconstruction": copy.out.mean, "sigma_r": sigma(copy.out.log_var),
            "CGM probability": copy.out.seg_logits.softmax(1)[:, 1:], "sigma_s": sigma(copy.out.seg_log_var)}
    save_results(Path(args.out) / "fig7", "fig7", panel(maps, f"{scan.subject}: multi-task model, noise outside the brain"),
                 pd.DataFrame([scan_summary(scan, copy)]), {"subject": scan.subject, "artefact": "partial noise -5 dB"})


if __name__ == "__main__":
    main()
