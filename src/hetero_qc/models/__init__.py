"""Networks: plain torch modules, no Lightning."""

from hetero_qc.models.networks import (
    MultiTaskNet,
    NetOutput,
    ReconstructionNet,
    soft_clamp,
)
from hetero_qc.models.unet import UNetConfig

__all__ = ["MultiTaskNet", "NetOutput", "ReconstructionNet", "UNetConfig", "soft_clamp"]
