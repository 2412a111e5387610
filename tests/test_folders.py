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


def test_a_killed_writers_temp_folder_carries_its_pid_and_the_next_one_removes_it(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".model.converting-{dead}-ab12").mkdir()                # a convert killed with kill -9
    (tmp_path / f".model.converting-{dead}-ab12" / "pytorch_model.bin").write_bytes(b"half")
    (tmp_path / f".model.exporting-{os.getpid()}-cd34").mkdir()          # a run that still lives: kept
    (tmp_path / f".notes.draft-{dead}-ef56").mkdir()                     # not one of ours: kept
    with atomic_folder(new_folder(tmp_path / "onnx"), "exporting") as tmp:
        assert tmp.name.startswith(f".onnx.exporting-{os.getpid()}-")
        (tmp / "model.onnx").write_bytes(b"x")
    assert sorted(os.listdir(tmp_path)) == [f".model.exporting-{os.getpid()}-cd34", f".notes.draft-{dead}-ef56",
                                            "onnx"]


# ---- an existing folder replaced as one unit ------------------------------------------------------
from nspzero.errors import DataError  # noqa: E402
from nspzero import folders  # noqa: E402
from nspzero.folders import check_folder_output, clean_leftovers, replaced_folder  # noqa: E402


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _old_run(tmp_path):
    out = tmp_path / "out"
    (out / "cache").mkdir(parents=True)
    (out / "cache" / "scores.jsonl").write_text("cached\n")
    (out / "results.json").write_text("old results")
    (out / "a.predictions.jsonl").write_text("old predictions")
    (out / "notes.txt").write_text("the user's")
    return out


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_the_new_files_replace_the_old_ones_together_and_the_others_stay(tmp_path, monkeypatch, exchange):
    out = _old_run(tmp_path)
    cache_inode = (out / "cache" / "scores.jsonl").stat().st_ino
    out.chmod(0o750)
    if not exchange:
        monkeypatch.setattr(folders, "_exchange", lambda a, b: False)
    with replaced_folder(out) as stage:
        (stage / "results.json").write_text("new results")
        (stage / "a.predictions.jsonl").write_text("new predictions")
    assert _tree(out) == {"a.predictions.jsonl": b"new predictions", "cache/scores.jsonl": b"cached\n",
                          "notes.txt": b"the user's", "results.json": b"new results"}
    assert (out / "cache" / "scores.jsonl").stat().st_ino == cache_inode   # linked, not copied
    assert out.stat().st_mode & 0o777 == 0o750                              # the folder keeps its mode
    assert os.listdir(tmp_path) == ["out"]                                  # no staging left


def test_a_new_folder_is_made_when_there_was_none(tmp_path):
    with replaced_folder(tmp_path / "out") as stage:
        (stage / "results.json").write_text("new")
    assert _tree(tmp_path / "out") == {"results.json": b"new"} and os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("fault", ["in the block", "at the swap", "Ctrl-C"])
def test_a_fault_at_any_point_leaves_every_previous_file(tmp_path, monkeypatch, fault):
    out = _old_run(tmp_path)
    before = _tree(out)

    def swap_fails(stage, target):
        raise OSError(28, "No space left on device")

    if fault == "at the swap":
        monkeypatch.setattr(folders, "_swap", swap_fails)
    raised = {"in the block": RuntimeError, "at the swap": DataError, "Ctrl-C": KeyboardInterrupt}[fault]
    with pytest.raises(raised) as info:
        with replaced_folder(out) as stage:
            (stage / "results.json").write_text("new results")
            if fault == "in the block":
                raise RuntimeError("plot failed")
            if fault == "Ctrl-C":
                raise KeyboardInterrupt
    if fault == "at the swap":
        assert str(info.value) == f"could not write {out}: No space left on device; its previous files are unchanged"
    assert _tree(out) == before and os.listdir(tmp_path) == ["out"]


def _dead_pid():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_a_killed_run_are_cleaned_or_put_back(tmp_path):
    out = _old_run(tmp_path)
    dead, alive = _dead_pid(), os.getpid()
    (tmp_path / f".out.staging-{dead}-x1").mkdir()
    (tmp_path / f".out.staging-{alive}-x2").mkdir()          # a run that still lives: left alone
    (tmp_path / ".outer.staging-1-x3").mkdir()                 # another folder's: left alone
    clean_leftovers(out)
    assert sorted(os.listdir(tmp_path)) == [f".out.staging-{alive}-x2", ".outer.staging-1-x3", "out"]
    os.rename(out, tmp_path / f".out.previous-{dead}-x4")      # killed between the two renames
    clean_leftovers(out)
    assert (out / "results.json").read_text() == "old results"
    os.rename(out, tmp_path / f".out.previous-{dead}-x5")      # ... and the next run made an empty out first
    out.mkdir()
    clean_leftovers(out)
    assert (out / "results.json").read_text() == "old results"
    assert sorted(os.listdir(tmp_path)) == [f".out.staging-{alive}-x2", ".outer.staging-1-x3", "out"]


def test_an_output_folder_holding_an_input_or_the_current_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "runs" / "model").mkdir(parents=True)
    with pytest.raises(UsageError, match=r"--output-dir '.*data' is or holds the input '.*data'; it is replaced"):
        check_folder_output(tmp_path / "data", [str(tmp_path / "data")])
    with pytest.raises(UsageError, match="is or holds the input .*model"):
        check_folder_output(tmp_path / "runs", [str(tmp_path / "data"), str(tmp_path / "runs" / "model")])
    check_folder_output(tmp_path / "data" / "results", [str(tmp_path / "data"), "bert-base-chinese"])
    monkeypatch.chdir(tmp_path / "runs")
    with pytest.raises(UsageError, match="holds the current folder"):
        check_folder_output(".", [])
