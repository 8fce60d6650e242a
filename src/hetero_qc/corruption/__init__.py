"""Batched, on-device MRI artefacts: ``(B, 1, D, H, W)`` in, same out, per-sample parameters."""

from hetero_qc.corruption.base import Corrupted, Params, RandomArtefact
from hetero_qc.corruption.bias_field import BiasFieldParams, RandomBiasField, bias_field
from hetero_qc.corruption.ghosting import GhostingParams, RandomGhosting, ghosting
from hetero_qc.corruption.motion import MotionParams, RandomMotion, motion
from hetero_qc.corruption.noise import (
    NoiseParams,
    PartialNoiseParams,
    RandomPartialNoise,
    RandomRicianNoise,
    foreground_mean,
    grow_mask,
    rician_noise,
    sigma_for_snr,
)
from hetero_qc.corruption.pipeline import CorruptionPipeline, PipelineResult
from hetero_qc.corruption.spike import RandomSpike, SpikeParams, spike
from hetero_qc.corruption.tio_transform import ArtefactTransform

ARTEFACTS: dict[str, type[RandomArtefact]] = {
    cls.name: cls
    for cls in (RandomMotion, RandomGhosting, RandomSpike, RandomBiasField, RandomRicianNoise,
                RandomPartialNoise)
}

__all__ = [
    "ARTEFACTS", "ArtefactTransform", "BiasFieldParams", "Corrupted", "CorruptionPipeline",
    "GhostingParams", "MotionParams", "NoiseParams", "Params", "PartialNoiseParams", "PipelineResult", "RandomArtefact",
    "RandomBiasField", "RandomGhosting", "RandomMotion", "RandomPartialNoise", "RandomRicianNoise",
    "RandomSpike", "SpikeParams", "bias_field", "foreground_mean", "ghosting", "grow_mask", "motion",
    "rician_noise", "sigma_for_snr", "spike",
]
