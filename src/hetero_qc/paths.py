"""Where the repository's configs and embedded data live (an editable install, as `make install` does)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "conf"
DATA_DIR = REPO_ROOT / "data"
MODEL_DIR = Path(__file__).resolve().parent / "shipped"  # package data: model.ckpt, cutoffs.json, config.yaml...
