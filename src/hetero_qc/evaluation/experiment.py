"""What every figure script shares: the trained model of a profile, its test scans, atomic results."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from hydra.utils import instantiate
from omegaconf import open_dict
from torch import nn

from hetero_qc.atomic import write_atomic
from hetero_qc.data import Scan
from hetero_qc.evaluation.runs import config_key, experiment_name, profiles, trained_checkpoint
from hetero_qc.inference import TrainedModel, load_model


class Trained(NamedTuple):
    """A trained model with the validation and test scans of its split."""

    model: TrainedModel
    test_scans: list[Scan]
    val_scans: list[Scan]

    @property
    def net(self) -> nn.Module:
        return self.model.net

    def predicting(self, **changes) -> Trained:
        """The same model and scans, predicting with ``changes`` to how
        (:class:`~hetero_qc.inference.TrainedModel` fields: ``roi_size``, ``mirror``)."""
        return self._replace(model=replace(self.model, **changes))


def trained(profile: str, kind: str, max_subjects: int | None = None, checkpoint: str | Path | None = None,
            cache_dir: str | Path | None = None) -> Trained:
    """The ``kind`` model (``recon`` or ``multitask``) of ``profile`` (trained now if no run exists),
    with the validation and test scans of its own split.

    ``checkpoint``: score this checkpoint instead (the shipped model, a long run's last.ckpt); the
    scans are those of ``profile``'s data and split (the experiment config of the checkpoint's own
    kind; the split depends on its seed only), prepared with the checkpoint's own preprocessing
    settings, as the QC tool prepares a user's scans (a long-run checkpoint scored under
    ``profile=cpu`` otherwise met scans scaled without its ``head_median``).
    ``cache_dir``: where the prepared scans are cached (default: the experiment's, in the repository).
    A ``recon`` figure reads the reconstruction and sigma_r only, which the mirrored segmentation
    pass leaves as they are, so it is skipped there (half the time on a multi-task checkpoint).
    """
    if checkpoint is None:
        experiment = experiment_name(profile, kind)
        model = load_model(trained_checkpoint(experiment))
    else:  # the data config of the checkpoint's own kind: Fig 4 can score multitask_long's (no recon_long)
        model = load_model(checkpoint)
        experiment = experiment_name(profile, "multitask" if model.multitask else "recon")
    if kind == "recon":
        model = replace(model, mirror=False)
    checkpoint = model.path
    _, cfg = config_key(experiment)
    with open_dict(cfg):
        cfg.run_dir = str(checkpoint.parent.parent)
        cfg.data.max_eval_subjects = max_subjects
        cfg.data.split_dir = None
        if cache_dir is not None:
            cfg.data.cache_dir = str(cache_dir)
        if model.preprocessing is not None:
            settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.preprocessing).items()}
            cfg.data.preprocessing = {"_target_": "hetero_qc.data.Preprocessing", **settings}
    datamodule = instantiate(cfg.data)
    datamodule.setup("validate")  # only the validation and test scans are read, not the training ones
    datamodule.setup("test")
    return Trained(model, datamodule.scans["test"], datamodule.scans["val"])


def figure_parser(doc: str | None, out: str, checkpoint: str | None = None) -> argparse.ArgumentParser:
    """The arguments every figure script takes: ``--profile``, ``--seed``, ``--out``, ``--max-subjects``
    and ``--checkpoint`` (default ``checkpoint``; None: the profile's own trained model)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=profiles(),
                        help="cpu: the CPU experiments (default); paper: the paper's settings, for a GPU")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated corruptions")
    parser.add_argument("--out", default=out, help=f"results folder (default {out})")
    parser.add_argument("--max-subjects", type=int, default=None,
                        help="use only the first N validation and test subjects (default: all)")
    parser.add_argument("--checkpoint", default=checkpoint,
                        help=f"score this model (a long run's last.ckpt, the shipped model) instead of "
                             f"the profile's own (default: {checkpoint or 'the profile model, trained if missing'})")
    return parser


def save_results(folder: Path, name: str, figure: plt.Figure, table: pd.DataFrame, summary: dict) -> None:
    """Write ``name.png``, ``name.pdf``, ``name.csv`` and ``summary.json`` into ``folder``, each atomically;
    the summary is serialised first, so one that cannot be (``TypeError``) leaves the folder as it was
    rather than new figures beside an old summary."""
    text = json.dumps(summary, indent=1)
    for suffix in (".png", ".pdf"):
        write_atomic(folder / f"{name}{suffix}", lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight"))
    plt.close(figure)
    write_atomic(folder / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_atomic(folder / "summary.json", lambda tmp: Path(tmp).write_text(text))
