import os
import stat

import pytest

from hetero_qc.atomic import write_atomic, write_text


def test_write_text_gives_usual_permissions_and_replaces(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two" and os.listdir(target.parent) == ["out.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_failed_write_leaves_neither_target_nor_temporary(tmp_path):
    def fail(tmp):
        assert tmp.endswith(".nii.gz")  # the suffix survives, for writers that read it
        with open(tmp, "w") as f:
            f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "scan.nii.gz", fail)
    assert os.listdir(tmp_path) == []
