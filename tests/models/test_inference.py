import pytest
import torch

from hetero_qc.inference import predict
from hetero_qc.models import MultiTaskNet, ReconstructionNet, UNetConfig

TINY = UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2))


def test_mirrored_segmentation_is_left_right_equivariant_and_leaves_the_reconstruction():
    torch.manual_seed(0)
    net = MultiTaskNet(TINY).eval()
    image = torch.rand(1, 1, 16, 24, 16)
    plain = predict(net, image, autocast=False)
    mirrored = predict(net, image, autocast=False, mirror=True)
    of_flip = predict(net, image.flip(2), autocast=False, mirror=True)
    # the untrained net is not symmetric: mirroring changes its segmentation...
    assert (mirrored.seg_logits - plain.seg_logits).abs().max() > 1e-3
    # ...into the average of the two views, the same whichever way round the head comes in
    for field in ("seg_logits", "seg_log_var"):
        torch.testing.assert_close(getattr(mirrored, field), getattr(of_flip, field).flip(2), atol=1e-5, rtol=1e-5)
    expected = (plain.seg_logits + predict(net, image.flip(2), autocast=False).seg_logits.flip(2)) / 2
    torch.testing.assert_close(mirrored.seg_logits, expected, atol=1e-5, rtol=1e-5)
    for field in ("mean", "log_var"):
        torch.testing.assert_close(getattr(mirrored, field), getattr(plain, field))


def test_mirror_needs_a_segmentation():
    with pytest.raises(ValueError, match="segmentation"):
        predict(ReconstructionNet(TINY).eval(), torch.rand(1, 1, 16, 16, 16), mirror=True)
