"""A new output folder is written whole or not at all, and never over something that exists."""
import os

import pytest

from nspzero.errors import UsageError
from nspzero.folders import atomic_folder, new_folder


def test_a_new_folder_must_be_absent_or_empty_in_a_folder_that_exists(tmp_path):
    assert new_folder(tmp_path / "out") == tmp_path / "out"
    (tmp_path / "empty").mkdir()
    assert new_folder(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(UsageError, match="already exists and is not an empty folder; choose a new OUT_DIR"):
        new_folder(tmp_path / "full")
    with pytest.raises(UsageError, match="does not exist; create it first"):
        new_folder(tmp_path / "nope" / "out")


def test_the_folder_appears_only_when_the_block_ends_normally(tmp_path):
    out = new_folder(tmp_path / "out")
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(out, "writing") as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []   # neither the folder nor its temp
    with atomic_folder(out, "writing") as tmp:
        (tmp / "model.bin").write_bytes(b"x")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["model.bin"]
