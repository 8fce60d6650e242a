import torch

from hetero_qc.data import Scan
from hetero_qc.data.datasets import Batch, PatchDataset, VolumeDataset, collate, cut_patches


def scan(shape: tuple[int, int, int], seed: int = 0) -> Scan:
    image = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed))
    return Scan(f"s{seed}", image, image > 0.1, image > 0.5, image > 0.8, True, (2.0, 2.0, 2.0), torch.eye(4).numpy())


def test_patch_samples_hold_the_whole_volume_and_a_patch_inside_it():
    torch.manual_seed(0)
    source = scan((12, 16, 20))
    dataset = PatchDataset([source], (8, 8, 8), length=50)
    starts = []
    for i in range(len(dataset)):
        item = dataset[i]
        assert item.image.shape == (1, 12, 16, 20) and torch.equal(item.image, source.image)
        start, size = item.patch
        assert size == (8, 8, 8) and all(0 <= s <= n - 8 for s, n in zip(start, (12, 16, 20)))
        starts.append(start)
    assert len({tuple(s) for s in starts}) > 25  # random starts, not one fixed crop
    assert max(s[2] for s in starts) == 12 and min(s[0] for s in starts) == 0  # the whole range is drawn


def test_collate_pads_volumes_to_the_largest_and_cuts_each_patch():
    small, large = scan((8, 12, 16), 1), scan((12, 12, 20), 2)
    items = [PatchDataset([small], (4, 4, 4), 1)[0]._replace(patch=((1, 2, 3), (4, 4, 4))),
             PatchDataset([large], (4, 4, 4), 1)[0]._replace(patch=((7, 0, 15), (4, 4, 4)))]
    batch = collate(items)
    assert batch.image.shape == (2, 1, 12, 12, 20) and batch.head.dtype == torch.bool
    assert torch.equal(batch.image[0, :, :8, :, :16], small.image) and batch.image[0, :, 8:].abs().sum() == 0
    patches = cut_patches(batch.image, batch.patch)
    assert patches.shape == (2, 1, 4, 4, 4)
    assert torch.equal(patches[0], small.image[:, 1:5, 2:6, 3:7])
    assert torch.equal(patches[1], large.image[:, 7:11, 0:4, 15:19])


def test_whole_volume_batches_have_no_patch():
    batch = collate([VolumeDataset([scan((8, 8, 8))])[0]])
    assert isinstance(batch, Batch) and batch.patch is None and batch.spacing == ((2.0, 2.0, 2.0),)
