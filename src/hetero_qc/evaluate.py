"""Evaluation entry point for Hydra sweeps: one Rician noise level over every test subject.

``hetero-qc evaluate -m snr_db='range(-10,10.5,0.5)'`` writes ``rows.csv`` per level; the Fig 3
script collects them with ``--from-multirun``.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hetero_qc.config import CONFIG_DIR
from hetero_qc.evaluation.experiment import trained
from hetero_qc.evaluation.predictions import noisy_copies, predict_copies, scan_summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> float:
    model = trained(cfg.profile, "recon", cfg.get("max_subjects"), checkpoint=cfg.get("ckpt"),
                    cache_dir=cfg.get("cache_dir"))
    rows = []
    for scan in model.test_scans:
        copies = noisy_copies(scan.image[None], [float(cfg.snr_db)], int(cfg.seed))
        for copy in predict_copies(model.model, copies, [float(cfg.snr_db)]):
            rows.append({"snr_db": copy.label, **scan_summary(scan, copy)})
    table = pd.DataFrame(rows)
    table.to_csv(Path(HydraConfig.get().runtime.output_dir) / "rows.csv", index=False)
    return float(table["recon_error"].mean())


if __name__ == "__main__":
    main()
