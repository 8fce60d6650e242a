import json

import pytest

from hetero_qc.data import split_subjects, write_split


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    subjects = [f"s{i:03d}" for i in range(164)]
    split = split_subjects(subjects, (0.8, 0.1, 0.1), seed=3)
    assert split == split_subjects(list(reversed(subjects)), (0.8, 0.1, 0.1), seed=3)
    assert [len(split[k]) for k in ("train", "val", "test")] == [132, 16, 16]
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(subjects)
    assert not (set(split["train"]) & set(split["val"])) and not (set(split["val"]) & set(split["test"]))
    assert split != split_subjects(subjects, (0.8, 0.1, 0.1), seed=4)
    write_split(split, tmp_path / "run" / "split.json")
    assert json.loads((tmp_path / "run" / "split.json").read_text()) == split


def test_repeated_subject_ids_stay_together():
    split = split_subjects(["a", "a", "b", "c", "d", "e"], seed=0)
    assert sum(s.count("a") for s in split.values()) == 1


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (1.2, -0.1, -0.1)])
def test_bad_fractions_raise(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_subjects(["a", "b", "c"], fractions)
