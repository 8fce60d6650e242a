import numpy as np
import pytest
import torch
import torchio as tio

from hetero_qc.corruption import MotionParams, RandomMotion, motion
from hetero_qc.corruption.motion import segment_poses
from tests.corruption.reference import relative_error, torchio_apply


def params(degrees, translation, times) -> MotionParams:
    return MotionParams(torch.tensor(np.asarray(degrees)[None], dtype=torch.float32),
                        torch.tensor(np.asarray(translation)[None], dtype=torch.float32),
                        torch.tensor(np.asarray(times)[None], dtype=torch.float32))


def test_zero_motion_returns_input(phantom):
    out = motion(phantom, params(np.zeros((2, 3)), np.zeros((2, 3)), [0.3, 0.7]))
    torch.testing.assert_close(out, phantom, atol=1e-5, rtol=0)


DEGREES = [[3.0, -4.0, 5.0], [-2.0, 6.0, 1.0]]
TRANSLATION = [[4.0, -2.0, 2.0], [2.0, 2.0, -6.0]]  # whole voxels at 2 mm
NONE = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("times", [[0.3, 0.7], [0.6, 0.8], [0.1, 0.2]])
@pytest.mark.parametrize("degrees, translation, tolerance", [
    # Both resample identically (trilinear at R p + t), so only float32 round-off separates them:
    # 1e-4 of the artefact's size.
    (DEGREES, NONE, 1e-4),
    (NONE, TRANSLATION, 1e-4),
    (DEGREES, TRANSLATION, 1e-4),
], ids=["rotation", "translation", "both"])
def test_matches_torchio_motion(phantom, centred_affine, times, degrees, translation, tolerance):
    reference = torchio_apply(tio.Motion(degrees=np.array(degrees), translation=np.array(translation),
                                         times=np.array(times), image_interpolation="linear"),
                              phantom, centred_affine)
    ours = motion(phantom, params(degrees, translation, times), spacing=(2.0, 2.0, 2.0))
    assert relative_error(ours, reference, phantom) < tolerance


def test_centre_segment_uses_reference_pose():
    poses = segment_poses(torch.tensor([[0.3, 0.7]]), 10)
    assert poses.tolist() == [[1, 1, 1, 0, 0, 0, 0, 2, 2, 2]]  # TorchIO's sort_spectra rule


def test_batch_samples_are_independent(phantom):
    batch = torch.cat([phantom, phantom.flip(-1)])
    generator = torch.Generator().manual_seed(3)
    out, drawn = RandomMotion()(batch, generator=generator)
    alone = motion(batch[1:], drawn.select(torch.tensor([1])))
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=0)


def test_seeded_generator_reproduces(phantom):
    first = RandomMotion()(phantom, generator=torch.Generator().manual_seed(7))
    second = RandomMotion()(phantom, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(first.image, second.image)
    assert first.params.as_dict() == second.params.as_dict()


@pytest.mark.parametrize("kwargs, name", [({"num_transforms": 0}, "num_transforms"),
                                          ({"degrees": (5, 1)}, "degrees"),
                                          ({"phase_axis": 3}, "phase_axis"),
                                          ({"translation": -2}, "translation")])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RandomMotion(**kwargs)


def test_bad_batch_shape_raises(phantom):
    with pytest.raises(ValueError, match="images"):
        RandomMotion()(phantom[0])


def test_phase_axis_is_any_axis(phantom):
    # Acquiring lines along axis 0 of a volume is acquiring them along axis 2 of its transpose.
    translation = [[3.0, -1.0, 2.0], [-2.0, 2.5, 1.0]]
    along_0 = motion(phantom, params(NONE, translation, [0.3, 0.7]), phase_axis=0)
    swapped = [[t[2], t[1], t[0]] for t in translation]
    along_2 = motion(phantom.transpose(2, 4), params(NONE, swapped, [0.3, 0.7]), phase_axis=2)
    torch.testing.assert_close(along_0, along_2.transpose(2, 4), atol=1e-5, rtol=0)
