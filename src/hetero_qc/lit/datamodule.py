"""LightningDataModule: source -> split -> cached preprocessing -> patches / volumes."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from hetero_qc.data import Preprocessing, Scan, ScanCache, split_subjects, write_split
from hetero_qc.data.augmentation import Augmentation
from hetero_qc.data.datasets import PatchDataset, VolumeDataset, collate
from hetero_qc.data.sources import BidsSource, FolderSource, MniSource, ScanRecord

Source = FolderSource | BidsSource | MniSource


# The splits each Lightning stage reads (``setup(stage)``).
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class ScanDataModule(L.LightningDataModule):
    """Scans of one source, split by subject, preprocessed once and cached.

    Args:
        source: where the scans are (see :mod:`hetero_qc.data.sources`).
        preprocessing: TorchIO preprocessing settings.
        patch_size: training patch ``(D, H, W)``.
        batch_size: training batch size (validation and test use whole volumes, one at a time).
        samples_per_epoch: training patches per epoch.
        fractions: train/val/test fractions of subjects.
        seed: split seed.
        num_workers: DataLoader workers (0 works; on 2 cores, workers compete with training).
        cache_dir: disk cache of preprocessed scans, or ``None`` for memory only.
        max_eval_subjects: cap on validation/test subjects (``None``: all), for quick runs.
        split_dir: where ``split.json`` is written (the run folder), or ``None``.
        train_on_all: train on every subject (for a single-scan source such as ``mni``).
        augmentation: site appearance augmentation of the training scans (never of validation or
            test), or ``None``.
    """

    def __init__(
        self,
        source: Source,
        preprocessing: Preprocessing,
        patch_size: tuple[int, int, int] = (64, 64, 64),
        batch_size: int = 2,
        samples_per_epoch: int = 100,
        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        num_workers: int = 0,
        cache_dir: str | None = None,
        max_eval_subjects: int | None = None,
        split_dir: str | None = None,
        train_on_all: bool = False,
        augmentation: Augmentation | None = None,
    ) -> None:
        super().__init__()
        self.source, self.preprocessing = source, preprocessing
        self.patch_size, self.batch_size = tuple(patch_size), batch_size
        self.samples_per_epoch, self.fractions, self.seed = samples_per_epoch, tuple(fractions), seed
        self.num_workers, self.max_eval_subjects = num_workers, max_eval_subjects
        self.split_dir, self.train_on_all = split_dir, train_on_all
        self.augmentation = augmentation
        self.cache = ScanCache(preprocessing, cache_dir)
        self.scans: dict[str, list[Scan]] = {}
        self.split: dict[str, list[str]] = {}
        self.records: dict[str, ScanRecord] = {}

    def setup(self, stage: str | None = None) -> None:
        """Split once, then load (from the cache) only the splits ``stage`` uses; ``None`` loads all."""
        if not self.split:
            self.records = {r.subject: r for r in self.source.records()}
            if self.train_on_all:
                names = sorted(self.records)
                self.split = {"train": names, "val": names, "test": names}
            else:
                self.split = split_subjects(list(self.records), self.fractions, self.seed)
            if self.split_dir is not None and (self.trainer is None or self.trainer.is_global_zero):
                write_split(self.split, Path(self.split_dir) / "split.json")
        for stage_name in STAGE_SPLITS.get(stage, tuple(self.split)):
            if stage_name in self.scans:
                continue
            subjects = self.split[stage_name]
            if stage_name != "train" and self.max_eval_subjects is not None:
                subjects = subjects[: self.max_eval_subjects]
            self.scans[stage_name] = [self.cache.get(self.records[s]) for s in subjects]

    def _loader(self, dataset, batch_size: int, shuffle: bool = False) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader(PatchDataset(self.scans["train"], self.patch_size, self.samples_per_epoch,
                                         self.augmentation), self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(VolumeDataset(self.scans["val"]), 1)

    def test_dataloader(self) -> DataLoader:
        return self._loader(VolumeDataset(self.scans["test"]), 1)
