from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from hetero_qc.config import compose_train
from hetero_qc.data import Scan
from hetero_qc.data.augmentation import VOLUMES, Augmentation, crop_fov
from hetero_qc.data.datasets import PatchDataset, VolumeDataset
from tests.conftest import make_phantom

ALL_ON = dict(gamma_p=1.0, anisotropy_p=1.0, skull_strip_p=1.0, fov_crop_p=1.0)


def phantom_scan(n: int = 32, labels: bool = True) -> Scan:
    """A head phantom ``(1, n, n, n)`` with a brain inside the head and a cortex shell in the brain."""
    image = make_phantom(n)[0]
    z, y, x = torch.meshgrid(*[torch.linspace(-1, 1, n)] * 3, indexing="ij")
    radius = (x**2 / 0.6 + y**2 / 0.8 + z**2 / 0.5)[None]
    head = image > 0.05
    brain = (radius < 0.35) if labels else torch.zeros_like(head)
    cgm = brain & (radius > 0.25)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    return Scan("phantom", image, head, brain, cgm, labels, (2.0, 2.0, 2.0), affine)


def full_fov_scan(n: int = 32) -> Scan:
    """Every voxel non-zero in the image and the head, so that a cut slab shows as exact zeros."""
    image = 0.1 + 0.9 * torch.rand((1, n, n, n), generator=torch.Generator().manual_seed(1))
    head = torch.ones_like(image, dtype=torch.bool)
    return Scan("full", image, head, image > 0.3, image > 0.7, True, (2.0, 2.0, 2.0), np.eye(4))


def high_frequency_fraction(image: torch.Tensor, axis: int) -> float:
    """Share of the (mean-removed) power above 1/4 cycle per voxel along spatial ``axis``."""
    power = torch.fft.rfft(image[0] - image.mean(), dim=axis).abs() ** 2
    frequencies = torch.fft.rfftfreq(image.shape[1 + axis])
    high = (frequencies > 0.25).view([-1 if a == axis else 1 for a in range(3)])
    return float((power * high).sum() / power.sum())


def test_all_probabilities_zero_leave_the_scan_as_it_is_and_draw_nothing():
    scan = phantom_scan()
    state = torch.get_rng_state()
    out = Augmentation()(scan)
    assert torch.equal(torch.get_rng_state(), state)  # off means no draws: the patch draws stay as before
    for name in VOLUMES:
        assert torch.equal(getattr(out, name), getattr(scan, name))
    assert out.spacing == scan.spacing and np.array_equal(out.affine, scan.affine)


@pytest.mark.parametrize("step", [*ALL_ON, "all"])
def test_the_input_scan_is_never_modified(step):
    scan = full_fov_scan()  # every step changes it
    before = {name: getattr(scan, name).clone() for name in VOLUMES}
    augmentation = Augmentation(**(ALL_ON if step == "all" else {step: 1.0}))
    changed = 0
    for seed in range(6):
        torch.manual_seed(seed)
        out = augmentation(scan)
        changed += not torch.equal(out.image, scan.image)
    assert changed == 6
    for name in VOLUMES:
        assert torch.equal(getattr(scan, name), before[name]), name


@pytest.mark.parametrize("labels", [True, False])
def test_every_step_keeps_shapes_dtypes_range_and_grid(labels):
    scan = phantom_scan(labels=labels)
    augmentation = Augmentation(**ALL_ON)
    for seed in range(8):
        torch.manual_seed(seed)
        out = augmentation(scan)
        assert out.image.shape == (1, 32, 32, 32) and out.image.dtype == torch.float32
        assert 0.0 <= float(out.image.min()) and float(out.image.max()) <= 1.0
        for name in ("head", "brain", "cgm"):
            assert getattr(out, name).shape == (1, 32, 32, 32) and getattr(out, name).dtype == torch.bool
        assert out.spacing == scan.spacing and np.array_equal(out.affine, scan.affine)
        assert out.subject == scan.subject and out.has_labels == scan.has_labels


def test_a_draw_is_replayed_by_the_same_seed():
    scan, augmentation = phantom_scan(), Augmentation(**ALL_ON)
    torch.manual_seed(3)
    first = augmentation(scan)
    torch.manual_seed(3)
    second = augmentation(scan)
    for name in VOLUMES:
        assert torch.equal(getattr(first, name), getattr(second, name))


def test_skull_strip_zeroes_exactly_outside_the_brain_and_makes_the_head_the_brain():
    scan = phantom_scan()
    out = Augmentation(skull_strip_p=1.0)(scan)
    assert torch.equal(out.image[~scan.brain], torch.zeros(int((~scan.brain).sum())))
    assert torch.equal(out.image[scan.brain], scan.image[scan.brain])
    assert torch.equal(out.head, scan.brain) and torch.equal(out.brain, scan.brain) and torch.equal(out.cgm, scan.cgm)
    assert float(scan.image[scan.head & ~scan.brain].sum()) > 10  # there was a skull to strip


def test_skull_strip_leaves_a_scan_without_labels_alone():
    scan = phantom_scan(labels=False)
    out = Augmentation(skull_strip_p=1.0)(scan)
    assert torch.equal(out.image, scan.image) and torch.equal(out.head, scan.head)


def test_crop_fov_zeroes_the_named_slabs_in_the_image_and_every_mask():
    scan = full_fov_scan()
    out = crop_fov(scan, axis=1, before=3, after=5)
    for name in VOLUMES:
        volume, source = getattr(out, name), getattr(scan, name)
        assert volume.shape == source.shape and volume.dtype == source.dtype
        assert not volume[:, :, :3].any() and not volume[:, :, -5:].any(), name
        assert torch.equal(volume[:, :, 3:-5], source[:, :, 3:-5]), name


@pytest.mark.parametrize(("axis", "before", "after"), [(3, 1, 1), (0, -1, 2), (0, 20, 12)])
def test_crop_fov_refuses_a_bad_axis_or_slab(axis, before, after):
    with pytest.raises(ValueError, match="axis" if axis == 3 else "before and after"):
        crop_fov(full_fov_scan(), axis, before, after)


def test_random_fov_crop_cuts_one_axis_at_one_or_both_ends_within_the_fraction():
    scan = full_fov_scan(24)
    augmentation = Augmentation(fov_crop_p=1.0, fov_max_fraction=0.25)
    axes, end_kinds = set(), set()
    for seed in range(24):
        torch.manual_seed(seed)
        out = augmentation(scan)
        cut = out.image[0] == 0  # the scan has no zeros of its own
        # Whole slices of one axis: a prefix and/or a suffix, each at most 6 (= 24 / 4) thick.
        cut_slices = [cut.all(dim=[a for a in range(3) if a != axis]) for axis in range(3)]
        (axis,) = [axis for axis in range(3) if cut_slices[axis].any()]
        slices = cut_slices[axis].int()
        before, after = int(slices.cumprod(0).sum()), int(slices.flip(0).cumprod(0).sum())
        assert before + after == int(slices.sum()) >= 1 and before <= 6 and after <= 6
        expected = crop_fov(scan, axis, before, after)  # nothing else changed, masks included
        assert all(torch.equal(getattr(out, name), getattr(expected, name)) for name in VOLUMES)
        axes.add(axis)
        end_kinds.add((before > 0, after > 0))
    assert axes == {0, 1, 2} and end_kinds == {(True, False), (False, True), (True, True)}


def test_gamma_is_a_power_of_the_image_that_keeps_its_order_and_range():
    scan = phantom_scan()
    out = Augmentation(gamma_p=1.0, log_gamma=(0.3, 0.3))(scan)
    torch.testing.assert_close(out.image, scan.image ** float(np.exp(0.3)), rtol=1e-5, atol=1e-6)
    order = torch.argsort(scan.image.flatten())
    assert (out.image.flatten()[order].diff() >= 0).all()  # monotonic: no two voxels swap
    assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1
    assert all(getattr(out, name) is getattr(scan, name) for name in ("head", "brain", "cgm"))
    means = set()
    augmentation = Augmentation(gamma_p=1.0, log_gamma=0.3)  # one number d: U(-d, d)
    for seed in range(5):
        torch.manual_seed(seed)
        image = augmentation(scan).image
        assert (image.flatten()[order].diff() >= 0).all()
        means.add(float(image.mean()))
    assert len(means) == 5  # a new gamma per call, brighter and darker
    assert min(means) < float(scan.image.mean()) < max(means)


def test_anisotropy_blurs_one_random_axis_and_keeps_the_grid():
    noise = torch.rand((1, 32, 32, 32), generator=torch.Generator().manual_seed(0))
    scan = Scan("noise", noise, noise > 0, noise > 0.5, noise > 0.8, True, (2.0, 2.0, 2.0), np.diag([2.0, 2.0, 2.0, 1.0]))
    white = [high_frequency_fraction(noise, axis) for axis in range(3)]  # ~0.47 each
    augmentation = Augmentation(anisotropy_p=1.0, downsampling=(2.0, 3.0))
    blurred_axes = set()
    for seed in range(9):
        torch.manual_seed(seed)
        out = augmentation(scan)
        assert out.image.shape == noise.shape and all(getattr(out, n) is getattr(scan, n) for n in ("head", "brain", "cgm"))
        ratios = [high_frequency_fraction(out.image, axis) / white[axis] for axis in range(3)]
        blurred = [axis for axis in range(3) if ratios[axis] < 0.3]  # 2x to 3x thicker: ~0.1
        assert len(blurred) == 1, ratios  # thick slices along one axis only
        assert all(abs(ratios[axis] - 1) < 0.05 for axis in range(3) if axis not in blurred), ratios
        blurred_axes.update(blurred)
    assert blurred_axes == {0, 1, 2}


def test_anisotropy_keeps_the_edge_slices_and_the_position():
    # SimpleITK alone would leave the first and last slice black for about half the factors.
    scan = full_fov_scan(32)
    for factor in (1.6, 1.8, 2.2, 2.7, 3.0):
        augmentation = Augmentation(anisotropy_p=1.0, downsampling=(factor, factor))
        for seed in range(3):
            torch.manual_seed(seed)
            assert float(augmentation(scan).image.min()) > 0.05, (factor, seed)
    # On the same grid, not shifted: the phantom's centre of mass stays within a tenth of a voxel.
    phantom = phantom_scan()
    augmentation = Augmentation(anisotropy_p=1.0, downsampling=(1.5, 3.0))
    grid = torch.stack(torch.meshgrid(*[torch.arange(32.0)] * 3, indexing="ij"))
    def centre(image):
        return (grid * image).sum(dim=(1, 2, 3)) / image.sum()
    for seed in range(6):
        torch.manual_seed(seed)
        shift = centre(augmentation(phantom).image) - centre(phantom.image)
        assert float(shift.abs().max()) < 0.1, shift


@pytest.mark.parametrize("arguments", [dict(gamma_p=-0.1), dict(anisotropy_p=1.5), dict(skull_strip_p=2.0),
                                       dict(fov_crop_p=-1.0), dict(log_gamma=(0.3, -0.3)),
                                       dict(downsampling=(0.5, 2.0)), dict(fov_max_fraction=0.0),
                                       dict(fov_max_fraction=0.5)])
def test_invalid_arguments_fail_at_construction_naming_them(arguments):
    with pytest.raises(ValueError, match=next(iter(arguments))):
        Augmentation(**arguments)


def test_patch_dataset_augments_each_drawn_scan_and_without_it_is_unchanged():
    scan = phantom_scan()
    torch.manual_seed(0)
    plain = [PatchDataset([scan], (16, 16, 16), 10)[i] for i in range(10)]
    torch.manual_seed(0)
    off = [PatchDataset([scan], (16, 16, 16), 10, Augmentation())[i] for i in range(10)]
    assert [item.patch for item in off] == [item.patch for item in plain]  # an idle augmentation draws nothing
    dataset = PatchDataset([scan], (16, 16, 16), 10, Augmentation(skull_strip_p=1.0))
    for i in range(len(dataset)):
        item = dataset[i]
        assert torch.equal(item.image, scan.image * scan.brain) and torch.equal(item.head, scan.brain)
        assert item.patch[1] == (16, 16, 16)
    assert torch.equal(plain[0].image, scan.image)


def test_sites_config_augments_the_training_split_only(tmp_path):
    cfg = compose_train(["experiment=multitask_cpu", "+augmentation@data.augmentation=sites",
                         f"paths.cache={tmp_path / 'cache'}"], tmp_path)
    datamodule = instantiate(cfg.data)
    augmentation = datamodule.augmentation
    assert isinstance(augmentation, Augmentation)
    assert min(augmentation.gamma_p, augmentation.anisotropy_p, augmentation.skull_strip_p, augmentation.fov_crop_p) > 0
    scan = phantom_scan(64)
    datamodule.scans = {"train": [scan], "val": [scan], "test": [scan]}  # no preprocessing needed
    assert datamodule.train_dataloader().dataset.augmentation is augmentation
    for loader in (datamodule.val_dataloader(), datamodule.test_dataloader()):
        assert isinstance(loader.dataset, VolumeDataset) and torch.equal(loader.dataset[0].image, scan.image)
    plain = instantiate(compose_train(["experiment=multitask_cpu", f"paths.cache={tmp_path / 'cache'}"], tmp_path).data)
    assert plain.augmentation is None
