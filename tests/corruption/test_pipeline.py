from pathlib import Path

import pytest
import torch
import torchio as tio
from hydra.utils import instantiate

from hetero_qc.config import compose_train
from hetero_qc.corruption import (
    ArtefactTransform,
    CorruptionPipeline,
    RandomMotion,
    RandomRicianNoise,
)
from hetero_qc.paths import CONFIG_DIR


@pytest.mark.parametrize("config", sorted((CONFIG_DIR / "corruption").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_corruption_config_builds_and_runs(config: Path, phantom):
    # Composed as training composes them (a config may extend another through its defaults list).
    pipeline = instantiate(compose_train([f"corruption={config.stem}"], "unused").corruption)
    batch = phantom.repeat(4, 1, 1, 1, 1)
    result = pipeline(batch, generator=torch.Generator().manual_seed(0), mask=batch > 0.5)
    assert result.image.shape == batch.shape and torch.isfinite(result.image).all()
    for name, hit in result.applied.items():
        assert hit.shape == (4,)
        assert (name in result.params) == bool(hit.any())


def test_clean_samples_are_untouched(phantom):
    pipeline = CorruptionPipeline({"noise": {"artefact": RandomRicianNoise(0.0), "p": 1.0}}, p_clean=0.5)
    batch = phantom.repeat(16, 1, 1, 1, 1)
    result = pipeline(batch, generator=torch.Generator().manual_seed(0))
    hit = result.applied["noise"]
    assert 0 < int(hit.sum()) < 16
    changed = (result.image != batch).flatten(1).any(1)
    assert torch.equal(changed, hit)


def test_bad_step_and_probability_raise():
    with pytest.raises(ValueError, match="artefact"):
        CorruptionPipeline({"x": {"artefact": "motion"}})
    with pytest.raises(ValueError, match="steps.noise.p"):
        CorruptionPipeline({"noise": {"artefact": RandomRicianNoise(), "p": 2}})
    with pytest.raises(ValueError, match="p_clean"):
        CorruptionPipeline({}, p_clean=-0.1)


def test_artefact_as_torchio_transform(phantom):
    subject = tio.Subject(t1=tio.ScalarImage(tensor=phantom[0].clone()))
    transform = tio.Compose([tio.RescaleIntensity((0, 1)), ArtefactTransform(RandomMotion(degrees=5))])
    out = transform(subject)
    assert out.t1.shape == (1, 32, 32, 32)
    assert not torch.allclose(out.t1.data, subject.t1.data)
    assert torch.equal(subject.t1.data, phantom[0])  # TorchIO copies: the input subject is untouched


def test_torchio_transform_rejects_non_artefacts():
    with pytest.raises(ValueError, match="artefact"):
        ArtefactTransform(tio.RandomMotion())
