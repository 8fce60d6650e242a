import nibabel as nib
import numpy as np
import pytest
import torch

from hetero_qc.data import (
    BidsSource,
    FolderSource,
    MniSource,
    Preprocessing,
    ScanCache,
    ScanRecord,
    preprocess,
)
from hetero_qc.data.preprocess import n4_correct, scale_intensity, smooth_tissue
from hetero_qc.paths import DATA_DIR
from tests.conftest import make_phantom, two_tissues


def write_scan(path, data, zooms=(1.5, 1.5, 3.0), orientation=None):
    orientation = np.diag([-1, 1, 1, 1]) if orientation is None else orientation
    affine = orientation.astype(float) @ np.diag([*zooms, 1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), path)


@pytest.fixture
def folder(tmp_path):
    phantom = make_phantom(40)[0, 0].numpy() * 800
    labels = np.where(phantom > 500, 120, np.where(phantom > 100, 85, 0))
    for i in range(3):
        write_scan(tmp_path / "images" / f"sub{i}_T1w.nii.gz", phantom)
        write_scan(tmp_path / "labels" / f"sub{i}_seg.nii.gz", labels)
    return tmp_path


def test_folder_source_matches_labels_by_template(folder):
    (folder / "labels" / "sub2_seg.nii.gz").unlink()
    records = FolderSource(folder, "images/*.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_seg.nii.gz").records()
    assert [r.subject for r in records] == ["sub0", "sub1", "sub2"]
    assert records[0].label is not None and records[2].label is None


def test_preprocessing_grid_intensities_and_masks(folder):
    record = FolderSource(folder, "images/*.nii.gz", r"(?P<subject>.+)_T1w", "labels/{subject}_seg.nii.gz").records()[0]
    scan = preprocess(record, Preprocessing(spacing=2.0, multiple=16))
    assert scan.spacing == (2.0, 2.0, 2.0)
    assert all(s % 16 == 0 for s in scan.image.shape[1:])
    assert 0 <= float(scan.image.min()) and float(scan.image.max()) == pytest.approx(1.0)
    assert scan.cgm.any() and (scan.cgm <= scan.brain).all() and scan.has_labels
    assert 0.05 < float(scan.head.float().mean()) < 0.6
    assert scan.head[scan.brain].float().mean() > 0.95  # the brain lies inside the head


def test_fixed_shape_must_divide_by_stride():
    with pytest.raises(ValueError, match="shape"):
        Preprocessing(shape=(100, 128, 128), multiple=16)


@pytest.mark.parametrize("bad, message", [(np.full((8, 8, 8), 3.0), "constant"),
                                          (np.where(np.eye(8)[None] > 0, np.nan, 1.0) * np.ones((8, 8, 8)), "NaN")])
def test_bad_images_raise_naming_the_file(tmp_path, bad, message):
    write_scan(tmp_path / "bad.nii.gz", bad)
    record = FolderSource(tmp_path).records()[0]
    with pytest.raises(ValueError, match=f"bad.nii.gz.*{message}"):
        preprocess(record, Preprocessing())


def write_bids(root, names: list[str]) -> None:
    """A BIDS dataset of phantom scans at ``names`` (paths relative to ``root``)."""
    phantom = make_phantom(16)[0, 0].numpy()
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "phantoms", "BIDSVersion": "1.9.0"}')
    for name in names:
        write_scan(root / name, phantom)


def test_bids_source_groups_sessions_and_skips_what_is_not_a_raw_t1w(tmp_path):
    write_bids(tmp_path, ["sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.nii.gz", "sub-01/ses-a/anat/sub-01_ses-a_run-2_T1w.nii.gz",
                          "sub-01/ses-b/anat/sub-01_ses-b_acq-mprage_T1w.nii.gz", "sub-02/anat/sub-02_T1w.nii",
                          "sub-02/anat/sub-02_T2w.nii.gz", "derivatives/x/sub-01/anat/sub-01_desc-brain_T1w.nii.gz",
                          "sub-02/anat/notes_T1w.nii.gz"])
    assert [r.subject for r in BidsSource(tmp_path).records()] == ["sub-01", "sub-01", "sub-01", "sub-02"]
    assert [p.name for p in BidsSource(tmp_path, participants=["sub-01"], sessions=["a"]).images()] == [
        "sub-01_ses-a_run-1_T1w.nii.gz", "sub-01_ses-a_run-2_T1w.nii.gz"]


@pytest.mark.parametrize("kwargs, message", [({"participants": ["03"]}, "no participant 03.*has 01, 02"),
                                             ({"sessions": ["c"]}, "no session c"),
                                             ({"participants": ["02"], "sessions": ["a"]}, "no T1w scan.*among")])
def test_bids_source_names_what_it_cannot_find(tmp_path, kwargs, message):
    write_bids(tmp_path, ["sub-01/ses-a/anat/sub-01_ses-a_T1w.nii.gz", "sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz"])
    with pytest.raises(ValueError, match=message):
        BidsSource(tmp_path, **kwargs).images()


def test_a_folder_without_dataset_description_is_not_bids(tmp_path):
    write_scan(tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz", make_phantom(16)[0, 0].numpy())
    with pytest.raises(ValueError, match="not a BIDS dataset"):
        BidsSource(tmp_path).images()


def test_embedded_ixi_scan_preprocesses_with_cortex():
    record = FolderSource(DATA_DIR / "ixi-hh-t1-2mm", "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w",
                          "labels/{subject}_dlmuse.nii.gz").records()[0]
    scan = preprocess(record, Preprocessing())
    assert tuple(scan.image.shape) == (1, 96, 128, 128)
    assert 0.02 < float(scan.cgm.float().mean()) < 0.1


def test_mni_source_needs_no_files():
    scan = preprocess(MniSource().records()[0], Preprocessing(spacing=4.0))
    assert scan.subject == "MNI152" and scan.cgm.any() and scan.has_labels


def test_disk_cache_serves_the_same_scan(folder, tmp_path):
    record = FolderSource(folder, "images/*.nii.gz").records()[0]
    first = ScanCache(Preprocessing(), tmp_path / "cache").get(record)
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 1
    second = ScanCache(Preprocessing(), tmp_path / "cache").get(record)  # a new process would do this
    assert torch.equal(first.image, second.image) and second.spacing == first.spacing


def test_datamodule_reads_only_the_splits_a_stage_needs(tmp_path):
    from hetero_qc.lit.datamodule import ScanDataModule

    phantom = make_phantom(16)[0, 0].numpy() * 800
    for i in range(10):
        write_scan(tmp_path / "images" / f"sub{i}_T1w.nii.gz", phantom, zooms=(4.0, 4.0, 4.0))
    source = FolderSource(tmp_path / "images", subject_pattern=r"(?P<subject>sub\d+)_T1w", label_template=None)
    datamodule = ScanDataModule(source, Preprocessing(spacing=4.0, multiple=4), seed=3, split_dir=str(tmp_path))
    datamodule.setup("test")
    assert set(datamodule.scans) == {"test"} and (tmp_path / "split.json").exists()
    assert [s.subject for s in datamodule.scans["test"]] == datamodule.split["test"]
    split = dict(datamodule.split)
    datamodule.setup("fit")
    assert set(datamodule.scans) == {"train", "val", "test"} and datamodule.split == split
    assert len(datamodule.scans["train"]) == 8
    assert not set(datamodule.split["train"]) & set(datamodule.split["test"])


def test_head_median_scale_holds_when_one_local_artefact_is_bright(tmp_path):
    # A box of strong noise over 1/27 of the field of view (a -5 dB partial-noise box, made in the raw
    # scan as an acquisition would): the upper percentile of the volume jumps, and with percentiles
    # alone every other voxel gets darker; scaled by the head's median they keep their intensity.
    record = FolderSource(DATA_DIR / "ixi-hh-t1-2mm", "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w",
                          "labels/{subject}_dlmuse.nii.gz").records()[0]
    image = nib.load(record.image)
    data = np.asarray(image.dataobj, np.float32)
    noisy = data.copy()
    box = tuple(slice(n // 2, n // 2 + n // 3) for n in data.shape)
    sigma = 1.8 * data[data > np.percentile(data, 50)].mean()
    rng = np.random.default_rng(0)
    noisy[box] = np.hypot(data[box] + rng.normal(0, sigma, data[box].shape), rng.normal(0, sigma, data[box].shape))
    nib.save(nib.Nifti1Image(noisy, image.affine), tmp_path / "noisy.nii.gz")
    marks = np.zeros(data.shape, np.int16)  # the box, with a margin for the resampling, as a "label"
    marks[tuple(slice(s.start - 4, s.stop + 4) for s in box)] = 150
    nib.save(nib.Nifti1Image(marks, image.affine), tmp_path / "box.nii.gz")
    changes, spread = {}, {}
    for median, n4 in ((None, False), (0.5, False), (0.5, True)):
        settings = Preprocessing(head_median=median, n4=n4)
        clean = preprocess(record, settings)
        artefact = preprocess(ScanRecord(record.subject, tmp_path / "noisy.nii.gz", tmp_path / "box.nii.gz"), settings)
        keep = clean.brain & ~artefact.brain  # the brain outside the box and its margin
        assert keep.sum() > 0.5 * clean.brain.sum()
        changes[median, n4] = float(artefact.image[keep].mean() / clean.image[keep].mean())
        if median is not None:
            assert abs(float(clean.image[clean.head].median()) - median) < 0.01
        spread[median, n4] = np.percentile((artefact.image[keep] / clean.image[keep].clamp_min(1e-3)).numpy(), [5, 95])
    # measured: 0.57 with percentiles alone, 0.97 by the head's median (the box's noisy background
    # joins the head mask and raises its median a little); N4 fits its field to the noisy box too,
    # which moves the brain outside it locally: voxel ratios 0.92-1.01 (5th-95th percentile), mean 0.97
    assert changes[None, False] < 0.7
    assert abs(changes[0.5, False] - 1) < 0.05 and abs(changes[0.5, True] - 1) < 0.05
    assert spread[0.5, True][0] > 0.88 and spread[0.5, True][1] < 1.05


def brain_in_noise(noise: float, n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A brain-like ball ``(1, n, n, n)``: a white-matter core (0.6) in a grey-matter shell (0.4), with
    additive noise of sd 0.02, in a field of view whose every other voxel holds Rician noise of sd
    ``noise`` (noise outside the brain, as the damage evaluation makes it); and the core and the ball."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.linspace(-1, 1, n)
    z, y, x = torch.meshgrid(grid, grid, grid, indexing="ij")
    radius = (x**2 + y**2 + z**2).sqrt()
    core, ball = radius < 0.5, radius < 0.75
    image = core * 0.6 + (ball & ~core) * 0.4 + ball * 0.02 * torch.randn((n, n, n), generator=generator)
    outside = torch.hypot(noise * torch.randn((n, n, n), generator=generator),
                          noise * torch.randn((n, n, n), generator=generator))
    return torch.where(ball, image, outside)[None].float(), core[None], ball[None]


def test_smooth_tissue_is_the_white_matter_whatever_fills_the_background():
    clean, core, _ = brain_in_noise(0.0)
    noisy, _, _ = brain_in_noise(1.0)  # noise outside the brain at 1.7x the white matter's intensity
    head = torch.ones_like(clean, dtype=torch.bool)  # the noise fills the head mask: the worst case
    for image in (clean, noisy):
        tissue = smooth_tissue(image, head, 0.1, 0.05)
        assert 0 < int(tissue.sum()) <= 0.05 * tissue.numel() + 1
        assert float((tissue & core).sum() / tissue.sum()) > 0.75  # measured 1.00 clean, 0.78 noisy
        assert float(image[tissue].median()) == pytest.approx(0.6, abs=0.02)
    assert float(noisy[head].median()) > 0.9  # the head's median follows the noise instead
    with pytest.raises(ValueError, match="no head voxel is brighter"):
        smooth_tissue(clean, core, 0.9, 0.05)


def test_tissue_level_keeps_the_brains_scale_under_noise_outside_the_brain():
    # The whole intensity scaling: scaled by the head's median, noise outside the brain darkens the
    # brain to under half its clean intensity (measured 0.40); by the smooth tissue it stays within 3%
    # (1.00; 0.89 when the lower percentile's offset, the noise's, was subtracted first), and the white
    # matter sits at the tissue level.
    (clean, core, ball), (noisy, _, _) = brain_in_noise(0.0), brain_in_noise(1.0)
    ratios = {}
    for settings in (Preprocessing(head_median=0.5), Preprocessing(tissue_level=0.5)):
        scaled = [scale_intensity(image, settings)[0] for image in (clean, noisy)]
        ratios[settings.tissue_level] = float((scaled[1][ball] / scaled[0][ball].clamp_min(1e-3)).median())
        if settings.tissue_level is not None:
            assert float(scaled[0][core].median()) == pytest.approx(0.5, abs=0.01)
    assert ratios[None] < 0.6 and ratios[0.5] == pytest.approx(1.0, abs=0.03)


def test_tissue_level_reads_a_magnitude_when_ghosts_leave_negatives():
    # A real-part reconstruction's ghosts leave negative values in the background: their lower
    # percentile must not lift the background's smooth zeros into the anchor (which scaled two ghosting
    # copies of the damage evaluation x500,000).
    clean, core, ball = brain_in_noise(0.0)
    ghosts = clean.clone()
    ghosts[..., ::4, :] = torch.where(ball[..., ::4, :], ghosts[..., ::4, :], -0.3)  # every 4th plane outside
    scaled, _ = scale_intensity(ghosts, Preprocessing(tissue_level=0.5))
    assert float(scaled[core].median()) == pytest.approx(0.5, abs=0.01)
    assert float(scaled.min()) >= 0 and float(scaled.max()) < 1


def test_the_scale_has_one_anchor():
    with pytest.raises(ValueError, match="head_median or tissue_level, not both"):
        Preprocessing(head_median=0.5, tissue_level=0.6)
    with pytest.raises(ValueError, match="tissue_level must be in"):
        Preprocessing(tissue_level=1.5)
    with pytest.raises(ValueError, match="smooth_fraction must be in"):
        Preprocessing(tissue_level=0.6, smooth_fraction=0)
    assert Preprocessing(tissue_level=0.6).key() != Preprocessing().key()
    assert Preprocessing(tissue_level=0.6, smooth_fraction=0.1).key() != Preprocessing(tissue_level=0.6).key()
    assert Preprocessing(smooth_fraction=0.1).key() == Preprocessing().key()  # it counts with tissue_level only


def test_n4_removes_a_smooth_field_and_keeps_the_tissue_contrast():
    # Two tissues (100 and 120, in a checkerboard of 4-voxel cubes, as fine as cortex and white matter
    # are on the 2 mm grid) under a smooth multiplicative field: N4 must take most of the field out of
    # each tissue's log intensity and keep their contrast.
    ball, checker, (z, y, x) = two_tissues()
    tissue = ball * (100 + 20 * checker)
    image = (tissue * torch.exp(0.3 * x + 0.2 * y * z))[None].float() + 1
    corrected = n4_correct(image)
    low, high = (ball & (tissue == 100))[None], (ball & (tissue == 120))[None]
    assert float(image[low].log().std()) > 0.1
    for tissue_mask in (low, high):
        assert float(corrected[tissue_mask].log().std()) < 0.03  # measured: 0.122 -> 0.008
    assert float(corrected[high].mean() / corrected[low].mean()) == pytest.approx(1.2, abs=0.02)  # 1.198
    assert corrected.shape == image.shape and torch.isfinite(corrected).all()


def test_n4_preprocessing_has_its_own_cache_key_and_leaves_the_others():
    assert Preprocessing(n4=True).key() != Preprocessing().key()
    assert Preprocessing(n4=False).key() == "7d994461d7f6"  # the key of the settings before n4 existed


def test_n4_errors_are_one_line():
    with pytest.raises(ValueError, match="N4 found no head"):
        n4_correct(torch.zeros(1, 16, 16, 16))
    with pytest.raises(ValueError, match="n4 must be true or false"):
        Preprocessing(n4="no")
