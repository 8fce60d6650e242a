"""Training entry point: compose the Hydra config, build data, module and trainer, fit, test.

``python -m hetero_qc.train experiment=recon_cpu`` or ``hetero-qc train experiment=recon_cpu``;
``ckpt_path=...`` resumes a run where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from hetero_qc.config import CONFIG_DIR  # also registers the ${repo_root:} resolver
from hetero_qc.metrics import Metric, key


def run(cfg: DictConfig) -> float | None:
    """Fit (and test) the configured model; returns the monitored validation metric for sweepers."""
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, _recursive_=False)
    monitor = key("val", Metric.NLL)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor,
                                 mode="min", save_last=True, save_top_k=1)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=[checkpoint], default_root_dir=str(run_dir))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if not trainer.fast_dev_run:  # the final state, whatever the validation schedule: resumable
        trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    if cfg.get("test") and not trainer.fast_dev_run:
        trainer.test(module, datamodule=datamodule, ckpt_path="last")  # the weights the experiments use
    value = trainer.callback_metrics.get(monitor)
    return None if value is None else float(value)


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    main()
