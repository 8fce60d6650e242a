"""Composing the repository's Hydra configs from code (entry points, benchmarks, tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from hetero_qc.paths import CONFIG_DIR, REPO_ROOT
from hetero_qc.precision import lightning_precision

if not OmegaConf.has_resolver("repo_root"):
    OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))
if not OmegaConf.has_resolver("cpu_precision"):
    OmegaConf.register_new_resolver("cpu_precision", lambda: lightning_precision("cpu"))


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The primary config ``conf/{name}.yaml`` (``train``, ``damage``) with Hydra ``overrides``.

    Inside a running Hydra app of this repository's configs (``hetero-qc evaluate``, a ``-m`` sweep),
    Hydra is already initialised on the same folder and is reused: initialising it again raises.
    """
    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=list(overrides))
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def compose_train(overrides: Sequence[str], run_dir: str | Path) -> DictConfig:
    """The ``train`` config with ``overrides``, its run folder set to ``run_dir`` (no Hydra job needed)."""
    cfg = compose_config("train", overrides)
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
    return cfg


def instantiate_levels(node: DictConfig) -> dict[str, dict[str, object]]:
    """``{artefact: {severity: transform config}}`` instantiated into transforms."""
    return {artefact: {level: instantiate(spec) for level, spec in levels.items()} for artefact, levels in node.items()}


def severities() -> dict[str, dict[str, object]]:
    """The named artefact severities of ``conf/severities/graded.yaml``, instantiated:
    ``severities()["motion"]["moderate"]`` is the Fig 4 statistic's motion."""
    return instantiate_levels(OmegaConf.load(CONFIG_DIR / "severities" / "graded.yaml"))
