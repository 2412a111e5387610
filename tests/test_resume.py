"""`classify --output OUT --resume` (nspzero.resume): a run stopped at any point and started again
scores only the shards it lacks and ends with the bytes of an uninterrupted run; a changed input,
model or request is refused; a second run of the same output is refused while the first works; a
full disk keeps the shards saved before. The references are plain runs without --resume."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nspzero.cli.classify
import nspzero.resume
from nspzero import NSPClassifier
from nspzero.resume import Progress, progress_folder

from conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread", "torch_kernels")

CHUNK = 6           # rows per shard in the in-process tests (the CLI's STREAM_CHUNK, patched)
ROWS = 27           # 5 shards: 4 full and one of 3
BASE = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "学校老师学生", "电竞玩家游戏"]


def _texts(n: int) -> list[str]:
    return [f"{BASE[i % len(BASE)]}{'一二三四五六七八九十'[i % 10] * (1 + i % 4)}{i}" for i in range(n)]


@pytest.fixture
def torch_kernels(monkeypatch):
    """The plain runs that give the reference bytes use the kernels --resume pins (torch's, no
    compile), whatever their own timing would pick (resume.pinned); subprocesses inherit it."""
    monkeypatch.setenv("NSPZERO_BACKEND", "torch")


@pytest.fixture
def data(tmp_path) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(_texts(ROWS))), encoding="utf-8")
    return src


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(nspzero.cli.classify, "STREAM_CHUNK", CHUNK)


@pytest.fixture
def scored(monkeypatch) -> list[int]:
    """The number of texts of each scoring call the CLI makes."""
    calls: list[int] = []
    original = NSPClassifier.run

    def run(self, request, texts, *args, **kwargs):
        calls.append(len(texts))
        return original(self, request, texts, *args, **kwargs)

    monkeypatch.setattr(NSPClassifier, "run", run)
    return calls


def _args(model, src, out, *extra):
    return ["classify", "-m", model, "-l", "体育,财经,科技", "-t", "这是一则{label}新闻", "--max-length", "32",
            "--device", "cpu", "--compile", "off", "-i", str(src), "-o", str(out), *extra]


def _stop_on_call(monkeypatch, n: int) -> None:
    """Ctrl-C in the n-th scoring call (the CLI's own interrupt path: exit 130)."""
    original = NSPClassifier.run
    count = {"n": 0}

    def run(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] == n:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NSPClassifier, "run", run)


def _interrupted(model, src, out, capsys, monkeypatch, at: int = 3, *extra) -> None:
    """A --resume run stopped in its `at`-th scoring call: `at - 1` more shards saved, no output."""
    before = len(list(progress_folder(out).glob("shard-*")))
    with monkeypatch.context() as patch:
        _stop_on_call(patch, at)
        code, _, err = run_cli(_args(model, src, out, "--resume", *extra), capsys)
    assert code == 130, err
    assert sorted(p.name for p in progress_folder(out).glob("shard-*")) == [f"shard-{i:06d}.jsonl"
                                                                              for i in range(before + at - 1)]


@pytest.mark.parametrize("suffix", ["jsonl", "json", "csv", "parquet"])
def test_a_resumed_run_ends_with_the_bytes_of_an_uninterrupted_one(model_dir, data, tmp_path, capsys, monkeypatch,
                                                                   small_shards, suffix):
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    plain, out = tmp_path / f"plain.{suffix}", tmp_path / f"out.{suffix}"
    assert run_cli(_args(model_dir, data, plain), capsys)[0] == 0
    _interrupted(model_dir, data, out, capsys, monkeypatch)
    assert not out.exists()

    calls: list[int] = []
    original = NSPClassifier.run
    monkeypatch.setattr(NSPClassifier, "run", lambda self, r, texts, *a, **k: calls.append(len(texts)) or
                        original(self, r, texts, *a, **k))
    code, _, err = run_cli(_args(model_dir, data, out, "--resume"), capsys)
    assert code == 0, err
    assert calls == [CHUNK, CHUNK, ROWS - 4 * CHUNK]  # only the three shards the stopped run left
    assert out.read_bytes() == plain.read_bytes()
    assert "2 of the output's shards were kept" in err
    assert not progress_folder(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.jsonl", plain.name, out.name])


def test_a_run_killed_at_any_shard_resumes_to_the_same_file(model_dir, data, tmp_path, capsys, monkeypatch,
                                                            small_shards):
    """Stopped in the first call, the last, and again in the resumed run: still the same bytes;
    a damaged shard is scored again, with a warning, never copied into the output."""
    plain, out = tmp_path / "plain.jsonl", tmp_path / "out.jsonl"
    assert run_cli(_args(model_dir, data, plain), capsys)[0] == 0
    with monkeypatch.context() as patch:
        _stop_on_call(patch, 1)
        assert run_cli(_args(model_dir, data, out, "--resume"), capsys)[0] == 130
    _interrupted(model_dir, data, out, capsys, monkeypatch, at=3)
    _interrupted(model_dir, data, out, capsys, monkeypatch, at=3)   # two more saved: 4 of 5
    (progress_folder(out) / "shard-000001.jsonl").write_text('{"text": "something else"}\n', encoding="utf-8")
    code, _, err = run_cli(_args(model_dir, data, out, "--resume"), capsys)
    assert code == 0, err
    assert "shard-000001.jsonl does not hold the results of its 6 rows" in err
    assert out.read_bytes() == plain.read_bytes()


@pytest.mark.parametrize("change, part", [
    ("input", "input file"),
    ("labels", "request"),
    ("template", "request"),
    ("model", "model"),
    ("max-length", "scoring settings"),
    ("kernels", "scoring settings"),
])
def test_a_changed_input_model_or_request_is_refused(model_dir, decisive_model_dir, data, tmp_path, capsys,
                                                     monkeypatch, small_shards, change, part):
    out = tmp_path / "out.jsonl"
    _interrupted(model_dir, data, out, capsys, monkeypatch)
    before = {p.name: p.read_bytes() for p in progress_folder(out).iterdir()}
    args = _args(model_dir, data, out, "--resume")
    if change == "input":  # one row edited in place: same size, other bytes
        data.write_text(data.read_text(encoding="utf-8").replace("今天", "明天", 1), encoding="utf-8")
    elif change == "labels":
        args[args.index("-l") + 1] = "体育,财经"
    elif change == "template":
        args[args.index("-t") + 1] = "{label}"
    elif change == "model":
        args[args.index("-m") + 1] = decisive_model_dir
    elif change == "max-length":
        args[args.index("--max-length") + 1] = "48"
    else:  # oneDNN's kernels round differently from torch's: the bytes would differ
        monkeypatch.setenv("NSPZERO_BACKEND", "onednn")
    code, _, err = run_cli(args, capsys)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"nspzero: error: --resume: {out} was begun with another {part}"), line
    assert f"delete {progress_folder(out)} to start over" in line
    assert {p.name: p.read_bytes() for p in progress_folder(out).iterdir()} == before  # nothing mixed in
    assert not out.exists()


def test_a_second_run_is_refused_and_a_dead_runs_lock_is_taken(model_dir, data, tmp_path, capsys, monkeypatch,
                                                               small_shards):
    out = tmp_path / "out.jsonl"
    _interrupted(model_dir, data, out, capsys, monkeypatch)
    parts = json.loads((progress_folder(out) / "manifest.json").read_text(encoding="utf-8"))["fingerprint"]
    with Progress(out, parts, CHUNK):  # a run at work (this process, another open file: flock refuses)
        code, _, err = run_cli(_args(model_dir, data, out, "--resume"), capsys)
    assert code == 1 and f"another run (pid {os.getpid()}) is writing {out} with --resume" in err, err
    # the lock file of a run that died (pid 999999999 is none): taken over
    (progress_folder(out) / "lock").write_text("999999999", encoding="utf-8")
    assert run_cli(_args(model_dir, data, out, "--resume"), capsys)[0] == 0
    assert out.exists() and not progress_folder(out).exists()


def test_a_full_disk_while_a_shard_is_written_keeps_the_shards_before(model_dir, data, tmp_path, capsys, monkeypatch,
                                                                      small_shards, scored):
    plain, out = tmp_path / "plain.jsonl", tmp_path / "out.jsonl"
    assert run_cli(_args(model_dir, data, plain), capsys)[0] == 0
    out.write_text("old results\n", encoding="utf-8")
    real = nspzero.resume.atomic_write
    shards = {"n": 0}

    def atomic_write(path, fill):
        if Path(path).name.startswith("shard-"):
            shards["n"] += 1
            if shards["n"] == 3:  # half the shard reaches the disk, then it is full
                def half(handle):
                    handle.write(b'{"text": ')
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real(path, half)
        return real(path, fill)

    with monkeypatch.context() as patch:
        patch.setattr(nspzero.resume, "atomic_write", atomic_write)
        code, _, err = run_cli(_args(model_dir, data, out, "--resume"), capsys)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert "No space left on device (the disk is full)" in line and "shards saved before are kept" in line, line
    assert sorted(p.name for p in progress_folder(out).iterdir()) == ["lock", "manifest.json", "shard-000000.jsonl",
                                                                      "shard-000001.jsonl"]  # no temp file
    assert out.read_text(encoding="utf-8") == "old results\n"
    scored.clear()
    assert run_cli(_args(model_dir, data, out, "--resume"), capsys)[0] == 0
    assert sum(scored) == ROWS - 2 * CHUNK and out.read_bytes() == plain.read_bytes()


@pytest.mark.parametrize("args, message", [
    (["classify", "-l", "体育,财经", "--resume", "今天比赛", "-o", "x.jsonl"], "--resume reads --input FILE"),
    (["classify", "-l", "体育,财经", "--resume", "-i", "-", "-o", "x.jsonl"], "--resume reads --input FILE"),
    (["classify", "-l", "体育,财经", "--resume", "-i", "IN"], "--resume reads --input FILE"),
])
def test_resume_needs_a_file_in_and_a_file_out(model_dir, data, tmp_path, capsys, args, message):
    args = [str(data) if a == "IN" else str(tmp_path / a) if a == "x.jsonl" else a for a in args]
    code, _, err = run_cli(args + ["-m", model_dir], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_without_resume_nothing_is_kept(model_dir, data, tmp_path, capsys, monkeypatch, small_shards):
    out = tmp_path / "out.jsonl"
    with monkeypatch.context() as patch:
        _stop_on_call(patch, 3)
        assert run_cli(_args(model_dir, data, out), capsys)[0] == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


# ---- a real process, killed ------------------------------------------------------------------------
KILL_ROWS = 4096    # 8 shards of the CLI's 512 rows


def _cli(args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nspzero.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _timed(args) -> tuple[float, str]:
    start = time.perf_counter()
    proc = _cli(args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return time.perf_counter() - start, err


def test_a_sigkilled_run_resumes_to_the_same_file_in_less_time(model_dir, tmp_path, capsys):
    """The driver SIGKILLed while it scores (5 of 8 shards saved); a second --resume run meanwhile is
    refused; the rerun scores the rest and writes the file of an uninterrupted run, byte for byte.
    Times are printed, not asserted (benchmarks/bench_resume.py measures them on a quiet machine);
    the uninterrupted reference runs in this process, so it pays no interpreter start-up."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(_texts(KILL_ROWS))), encoding="utf-8")
    plain, out = tmp_path / "plain.jsonl", tmp_path / "out.jsonl"
    args = ["classify", "-m", model_dir, "-l", "体育,财经", "--max-length", "24", "--device", "cpu",
            "--batch-size", "64", "--compile", "off", "-i", str(src)]
    start = time.perf_counter()
    assert run_cli(args + ["-o", str(plain)], capsys)[0] == 0
    full = time.perf_counter() - start

    proc = _cli(args + ["-o", str(out), "--resume"])
    folder = progress_folder(out)
    try:
        deadline = time.monotonic() + 240
        while len(list(folder.glob("shard-*.jsonl"))) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        code, _, err = run_cli(args + ["-o", str(out), "--resume"], capsys)  # meanwhile: refused
        assert code == 1 and f"another run (pid {proc.pid}) is writing" in err, err
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    kept = len(list(folder.glob("shard-*.jsonl")))
    assert 5 <= kept < 8 and not out.exists()

    resumed, err = _timed(args + ["-o", str(out), "--resume"])
    figures = (f"uninterrupted run {full:.1f} s (in this process), resumed run ({kept} of 8 shards kept) "
               f"{resumed:.1f} s (a new process)")
    assert f"{kept} of the output's shards were kept" in err, figures
    assert out.read_bytes() == plain.read_bytes(), figures
    assert not folder.exists(), figures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "plain.jsonl"], figures
    print(figures)
