"""The QC tests' tiny model (trained for two steps, once per session) and scan writers."""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import pytest

from hetero_qc.qc.verdict import Cutoffs
from hetero_qc.train import run
from tests.conftest import make_phantom
from tests.test_train import config


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    run(config(folder, "multitask_cpu", ["trainer.max_steps=2", "test=false"]))
    checkpoint = folder / "checkpoints" / "last.ckpt"
    Cutoffs(0.05, 0.5, 1.0, (0.0, 0.0, 0.0), "test").save(checkpoint.parent / "cutoffs.json")
    return checkpoint


def write(path, data, zooms=(2.0, 2.0, 2.0), affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*zooms, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), path)
    return path


def head(n=40):
    return make_phantom(n)[0, 0].numpy() * 900


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}
