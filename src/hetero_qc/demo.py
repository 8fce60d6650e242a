"""The corruption demo: one embedded IXI scan through every artefact and the default pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hetero_qc.atomic import write_atomic, write_text
from hetero_qc.config import severities
from hetero_qc.corruption import (
    RandomBiasField,
    RandomGhosting,
    RandomPartialNoise,
    RandomRicianNoise,
    RandomSpike,
)
from hetero_qc.data import FolderSource, Preprocessing, preprocess
from hetero_qc.data.nifti import save_volume
from hetero_qc.paths import CONFIG_DIR

IXI_IMAGES = {"image_glob": "t1/*_T1w.nii.gz", "subject_pattern": r"(?P<subject>.+)_T1w",
              "label_template": "labels/{subject}_dlmuse.nii.gz"}


def corruption_demo(data_dir: Path, out_dir: Path, seed: int = 0) -> str:
    """Corrupt the first IXI scan with each artefact; write NIfTIs, ``params.json`` and ``demo.png``.

    Returns:
        A short message saying where the outputs are.
    """
    record = FolderSource(data_dir, **IXI_IMAGES).records()[0]
    scan = preprocess(record, Preprocessing())
    clean = scan.image[None]  # (1, 1, D, H, W)
    brain = scan.brain[None]
    pipeline = instantiate(OmegaConf.load(CONFIG_DIR / "corruption" / "default.yaml"))
    artefacts = {
        "motion": severities()["motion"]["moderate"],
        "ghosting": RandomGhosting(intensity=(0.5, 0.8)),
        "spike": RandomSpike(intensity=(0.1, 0.2)),
        "bias_field": RandomBiasField(0.5),
        "noise (0 dB)": RandomRicianNoise(snr_db=0),
        "partial noise": RandomPartialNoise(snr_db=-5, region="outside_mask"),
    }
    generator = torch.Generator().manual_seed(seed)
    outputs, params = {"clean": clean}, {}
    for name, artefact in artefacts.items():
        outputs[name], drawn = artefact(clean, scan.spacing, generator, brain)
        params[name] = drawn.as_dict()
    result = pipeline(clean, scan.spacing, generator, brain)
    outputs["default pipeline"] = result.image
    params["default pipeline"] = {k: bool(v[0]) for k, v in result.applied.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, volume in outputs.items():
        file = name.split(" (")[0].replace(" ", "_")
        save_volume(volume[0, 0].numpy(), scan.affine, out_dir / f"{record.subject}_{file}.nii.gz")
    write_text(out_dir / "params.json", json.dumps(params, indent=1))
    figure, axes = plt.subplots(2, 4, figsize=(12, 6.5))
    for ax, (name, volume) in zip(axes.flat, outputs.items()):
        ax.imshow(volume[0, 0, volume.shape[2] // 2].T.numpy(), cmap="gray", origin="lower", vmin=0, vmax=1)
        ax.set_title(name)
        ax.axis("off")
    figure.suptitle(f"{record.subject} (IXI, 2 mm): simulated artefacts, sagittal mid-slice")
    figure.tight_layout()
    write_atomic(out_dir / "demo.png", lambda tmp: figure.savefig(tmp, dpi=100))
    plt.close(figure)
    return f"Wrote {len(outputs)} volumes, params.json and demo.png to {out_dir}/"
