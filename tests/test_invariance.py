"""Invariances and crash safety: scores do not depend on batch size, text order or thread count;
an interrupted `classify --output` leaves a valid prefix; atomic writes keep the old file."""
from __future__ import annotations

import logging
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nspzero.cli
import nspzero.io
from nspzero import NSPClassifier
from nspzero.scorer import NSPScorer

from conftest import VOCAB
from conftest import run_cli as _run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = 1e-5


def _scorer_like(clf: NSPClassifier, batch_size: int) -> NSPClassifier:
    """A classifier sharing clf's model and tokenizer, with another batch size."""
    s = clf.scorer
    return NSPClassifier(NSPScorer(s.tokenizer, s.model, device="cpu", max_length=s.max_length, batch_size=batch_size))


@pytest.fixture(scope="module")
def unbatched(clf) -> NSPClassifier:
    return _scorer_like(clf, 1)


# ---- (a) batch-size and order invariance (property test) ---------------------------------------
KNOWN = sorted({ch for tok in VOCAB if not tok.startswith("[") for ch in tok})
UNKNOWN = list("龘鱻é🙂Ωж")  # not in the tiny vocab: [UNK] (or accent-stripped) tokens
ALPHABET = KNOWN + UNKNOWN + [" "]
short_text = st.text(alphabet=ALPHABET, min_size=1, max_size=12)
long_text = st.text(alphabet=ALPHABET, min_size=40, max_size=90)  # beyond max_length=64 with its prompt
texts_st = st.lists(st.one_of(short_text, short_text, long_text).filter(lambda t: t.strip()), min_size=1, max_size=8)
LABEL_POOL = ["体育", "财经", "科技", "娱乐", "很好", "很差", "movie", "龘"]
TEMPLATES = ["{label}", "这是一则{label}新闻", ["东西{label}", "{label}的故事"]]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_st, labels=st.lists(st.sampled_from(LABEL_POOL), min_size=2, max_size=5, unique=True),
       batch_size=st.integers(1, 16), template=st.sampled_from(TEMPLATES),
       placement=st.sampled_from(["prefix", "suffix"]), data=st.data())
def test_scores_invariant_to_batch_size_and_text_order(clf, unbatched, texts, labels, batch_size, template,
                                                        placement, data):
    logging.getLogger("nspzero").disabled = True  # long texts warn about truncation on every call
    try:
        ref = unbatched.classify(texts, labels, template=template, placement=placement)
        batched = _scorer_like(clf, batch_size)
        got = batched.classify(texts, labels, template=template, placement=placement)
        perm = data.draw(st.permutations(range(len(texts))), label="order")
        shuffled = batched.classify([texts[i] for i in perm], labels, template=template, placement=placement)
    finally:
        logging.getLogger("nspzero").disabled = False
    for r, g in zip(ref, got):
        assert g.text == r.text and set(g.scores) == set(labels)
        for label in labels:
            assert g.scores[label] == pytest.approx(r.scores[label], abs=TOL)
    for pos, i in enumerate(perm):
        s, r = shuffled[pos], ref[i]
        assert s.text == r.text
        for label in labels:
            assert s.scores[label] == pytest.approx(r.scores[label], abs=TOL)


# ---- (b) thread-count invariance --------------------------------------------------------------
def test_scores_agree_across_thread_counts(clf):
    texts = ["今天比赛球队赢了", "市场上涨公司发布手机电脑游戏玩家" * 3, "好", "这次买的东西很差 hello world", "龘🙂",
             "老师学生上学校" * 12]
    labels = ["体育", "财经", "科技", "很差"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = clf.label_scores(texts, labels, template="这是一则{label}新闻")[1]
        torch.set_num_threads(2)
        two = clf.label_scores(texts, labels, template="这是一则{label}新闻")[1]
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    assert one.shape == (len(texts), len(labels))
    assert abs(one - two).max() <= TOL


# ---- (c) an interrupted `classify --output` leaves the old output untouched --------------------
def _interrupted_run(model_dir, tmp_path, capsys, monkeypatch, fail_on_call):
    """`classify -i in.txt -o out.jsonl` on 1200 texts over an existing out.jsonl, with a
    KeyboardInterrupt raised by the `fail_on_call`-th forward pass. Returns (exit code, stderr,
    output file, old output bytes, calls)."""
    texts = [f"今天比赛{i}" for i in range(1200)]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out_file = tmp_path / "out.jsonl"
    old = '{"text": "earlier results"}\n'.encode()
    out_file.write_bytes(old)
    calls = {"n": 0}
    original = NSPScorer.forward

    def forward(self, batch):
        calls["n"] += 1
        if calls["n"] == fail_on_call:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(NSPScorer, "forward", forward)
    code, _, err = _run(["classify", "-m", model_dir, "-l", "体育,财经", "--batch-size", "32", "-i", str(src),
                         "-o", str(out_file)], capsys)
    return code, err, out_file, old, calls["n"]


@pytest.mark.parametrize("chunk, fail_on_call", [
    (10, 2),      # chunks of 10 texts = 20 pairs = 1 pass: the 2nd pass is the 2nd chunk's
    (None, 40),   # the real STREAM_CHUNK (512 texts = 1024 pairs = 32 passes of 32): dies inside chunk 2
])
def test_interrupted_classify_keeps_the_old_output(model_dir, tmp_path, capsys, monkeypatch, chunk, fail_on_call):
    if chunk is not None:
        monkeypatch.setattr(nspzero.cli.classify, "STREAM_CHUNK", chunk)
    code, err, out_file, old, calls = _interrupted_run(model_dir, tmp_path, capsys, monkeypatch, fail_on_call)
    assert calls == fail_on_call  # the run stopped at the interrupt, not later
    assert code == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("nspzero: interrupted"), err
    assert out_file.read_bytes() == old  # byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]  # no temp file left


# ---- (d) atomic_write_text keeps the old file on failure ------------------------------------------
OLD = "old contents\n"
NEW = "新的内容\n" * 1000


def _fail_replace(monkeypatch):
    def replace(src, dst, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)
    return OSError


def _fail_write_midway(monkeypatch):
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def write(self, text):
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    return OSError


def _interrupt_fsync(monkeypatch):
    def fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)
    return KeyboardInterrupt


@pytest.mark.parametrize("fail", [_fail_replace, _fail_write_midway, _interrupt_fsync],
                         ids=["replace-fails", "write-fails-midway", "interrupt-before-rename"])
def test_atomic_write_text_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, fail):
    target = tmp_path / "results.json"
    target.write_text(OLD, encoding="utf-8")
    with monkeypatch.context() as m:
        exc = fail(m)
        with pytest.raises(exc):
            nspzero.io.atomic_write_text(target, NEW)
    assert target.read_text(encoding="utf-8") == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    nspzero.io.atomic_write_text(target, NEW)  # and once the fault is gone, the write goes through
    assert target.read_text(encoding="utf-8") == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
