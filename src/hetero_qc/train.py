"""Training entry point: compose the Hydra config, build data, module and trainer, fit, test.

``python -m hetero_qc.train experiment=recon_cpu`` or ``hetero-qc train experiment=recon_cpu``;
``ckpt_path=...`` resumes a run where it stopped; ``ckpt_path=last`` resumes from the run folder's own
``checkpoints/last.ckpt`` when there is one (the long recipes: run the same command again to carry on).
``init_from=...`` starts a new run from another run's weights (fine-tuning: a new optimiser, schedule and
step count); a resumed chunk of that run restores its own checkpoint instead and never reads them.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import hydra
import lightning as L
import pandas as pd
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from hetero_qc.atomic import write_atomic
from hetero_qc.config import CONFIG_DIR  # also registers the ${repo_root:} resolver
from hetero_qc.inference import load_model
from hetero_qc.metrics import Metric, key
from hetero_qc.models.unet import FixedNorm3d, estimate_norm_statistics


def join_chunks(run_dir: Path) -> None:
    """``run_dir/metrics.csv`` from the chunks of a resumed run: Lightning's CSV logger deletes the
    folder's metrics.csv when it starts again, so a carried run logs each chunk into its own
    ``version_N/`` (``logger.version=null``), and here they are joined in order."""
    chunks = sorted(run_dir.glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    if chunks:
        joined = pd.concat([pd.read_csv(chunk) for chunk in chunks], ignore_index=True)
        write_atomic(run_dir / "metrics.csv", lambda temporary: joined.to_csv(temporary, index=False))


EXTRAS = {"wandb": "wandb", "tensorboard": "tensorboard", "tensorboardX": "tensorboard"}  # module -> extra


def instantiate_logger(cfg: DictConfig) -> Logger | bool:
    """The configured logger (``False`` for none).

    Raises:
        ValueError: one line naming the extra to install, when the logger's package is missing.
    """
    if not cfg.get("logger"):
        return False
    try:
        return instantiate(cfg.logger)
    except (InstantiationException, ModuleNotFoundError) as error:
        cause = error if isinstance(error, ModuleNotFoundError) else error.__cause__
        missing = getattr(cause, "name", None) or ""
        if not isinstance(cause, ModuleNotFoundError) and "not installed" not in str(error):
            raise
        package = missing.split(".")[0] or next((m for m in EXTRAS if m in str(error)), "")
        extra = EXTRAS.get(package, package)
        raise ValueError(f"logger {cfg.logger._target_.rsplit('.', 1)[-1]} needs {package or 'a missing package'}: "
                         f"pip install 'hetero-qc[{extra}]' (make install includes it)") from None


# What fixed or mixed norms hold and the instance norms they replace lack: their statistics, and a mixed
# norm's instance share (starting at 1, the instance norm itself).
NEW_NORM_STATE = ("running_mean", "running_var", "num_batches_tracked", "instance_share")
NORM_STATISTICS_BATCHES = 16  # clean training batches that estimate fixed norms' statistics (32 patches of 2)


def start_from(module: L.LightningModule, checkpoint: str | Path, datamodule: L.LightningDataModule) -> None:
    """Copy the network weights of a trained checkpoint into ``module`` (not its optimiser or step).

    A network with fixed or mixed norms started from one with instance norms (``model.net.unet.norm=fixed``
    or ``mixed``) gets its norms' statistics from :data:`NORM_STATISTICS_BATCHES` clean training batches of
    ``datamodule`` (:func:`~hetero_qc.models.unet.estimate_norm_statistics`); fixed norms made instance
    norms again (``model.net.instance_norm_modules``) keep their affine weights and drop their statistics.

    Raises:
        ValueError: the file is not a hetero_qc checkpoint, or its network is not this run's.
    """
    weights = load_model(checkpoint).net.state_dict()
    try:
        missing, unexpected = module.net.load_state_dict(weights, strict=False)
    except RuntimeError as error:
        raise ValueError(f"init_from={checkpoint}: its network is not this run's model ({str(error)[:160]})") from None
    statistics = [k for k in missing if k.rsplit(".", 1)[-1] in NEW_NORM_STATE]
    # Statistics the run has no place for belong to fixed norms it made instance again (instance_norm_modules);
    # a network of instance norms only still refuses a fixed-norm checkpoint, as a likely wrong init_from.
    partly_fixed = any(isinstance(m, FixedNorm3d) for m in module.net.modules())
    dropped = [k for k in unexpected if partly_fixed and k.rsplit(".", 1)[-1] in NEW_NORM_STATE]
    if len(dropped) != len(unexpected) or len(statistics) != len(missing):
        wrong = sorted(set(missing) - set(statistics)) + sorted(set(unexpected) - set(dropped))
        raise ValueError(f"init_from={checkpoint}: its network is not this run's model (keys {wrong[:4]} differ)")
    if any(not key.endswith(".instance_share") for key in statistics):  # shares alone start at 1: nothing to estimate
        datamodule.setup("fit")
        batches = islice(datamodule.train_dataloader(), NORM_STATISTICS_BATCHES)
        estimate_norm_statistics(module.net, (batch.image for batch in batches))


def resumes(ckpt_path: str | None, run_dir: Path) -> bool:
    """Whether ``trainer.fit(ckpt_path=...)`` will restore a checkpoint (``last``: only if the run folder has one)."""
    if ckpt_path != "last":
        return ckpt_path is not None
    return any((run_dir / "checkpoints").glob("last*.ckpt"))


def run(cfg: DictConfig) -> float | None:
    """Fit (and test) the configured model; returns the monitored validation metric for sweepers."""
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, _recursive_=False)
    if cfg.get("init_from") and not resumes(cfg.get("ckpt_path"), run_dir):
        start_from(module, cfg.init_from, datamodule)
    monitor = key("val", Metric.NLL)
    best = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode="min",
                           save_top_k=1)
    # last.ckpt after every validation, and every `checkpoint_every_n_steps` steps in between, so that a
    # stopped run loses at most that many steps.
    last = ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                           every_n_train_steps=cfg.get("checkpoint_every_n_steps"))
    logger = instantiate_logger(cfg)
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=[best, last], default_root_dir=str(run_dir))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if not trainer.fast_dev_run:  # the final state, whatever the validation schedule: resumable
        trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    if cfg.get("test") and not trainer.fast_dev_run:
        trainer.test(module, datamodule=datamodule, ckpt_path="last")  # the weights the experiments use
    join_chunks(run_dir)
    value = trainer.callback_metrics.get(monitor)
    return None if value is None else float(value)


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    try:
        return run(cfg)
    except ValueError as error:  # bad settings or a missing extra: one line, not Hydra's traceback
        raise SystemExit(f"hetero-qc: error: {error}") from None


if __name__ == "__main__":
    main()
