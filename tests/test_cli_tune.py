"""`nspzero tune` (nspzero/cli/tune.py): the same weights as `NSPClassifier.fit`, a tuned folder that
`nspzero classify` reads without -l/-t, whole-or-nothing output under SIGKILL, --resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import run_cli
from nspzero.classifier import NSPClassifier

ROWS = [("东西很好", "好"), ("一二三四五", "坏"), ("天南海北", "中"), ("物归原主了", "好"), ("高视阔步", "坏"),
        ("不共戴天", "中")]
LABELS = ["好", "坏", "中"]
TEMPLATE = "这是{label}评"


def write_rows(path, rows, label_field="label") -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for text, label in rows:
            handle.write(json.dumps({"text": text, label_field: label}, ensure_ascii=False) + "\n")
    return str(path)


@pytest.fixture
def train(tmp_path) -> str:
    return write_rows(tmp_path / "train.jsonl", ROWS)


def tune_argv(model, train, out, *extra):
    return ["tune", "--model", model, "--input", train, "-l", ",".join(LABELS), "-t", TEMPLATE, "--output", str(out),
            *extra]


def test_cli_tune_equals_fit_and_classify_reads_the_folder_without_labels(decisive_model_dir, train, tmp_path,
                                                                          capsys):
    out = tmp_path / "tuned"
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, out, "--epochs", "2", "--lr", "1e-3",
                                     "--batch-size", "4", "--dev", train), capsys)
    assert code == 0, err
    assert "epoch 1/2: loss" in err and "dev accuracy" in err
    texts = [t for t, _ in ROWS]
    clf = NSPClassifier.from_pretrained(decisive_model_dir).fit(
        texts, [g for _, g in ROWS], labels=LABELS, template=TEMPLATE, epochs=2, learning_rate=1e-3, batch_size=4,
        dev=(texts, [g for _, g in ROWS]))
    expected = clf.label_scores(texts)[1]  # fit's own labels and template, none given
    loaded = NSPClassifier.from_pretrained(str(out))
    assert loaded.defaults["labels"] == {"好": ["好"], "坏": ["坏"], "中": ["中"]}
    np.testing.assert_allclose(loaded.label_scores(texts)[1], expected, atol=1e-5)
    assert np.abs(expected - NSPClassifier.from_pretrained(decisive_model_dir).label_scores(
        texts, LABELS, template=TEMPLATE)[1]).max() > 1e-3  # tuning changed the scores
    code, stdout, err = run_cli(["classify", "--model", str(out), texts[0]], capsys)
    assert code == 0, err
    row = json.loads(stdout)
    assert set(row["scores"]) == set(LABELS)
    np.testing.assert_allclose([row["scores"][name] for name in LABELS], expected[0], atol=1e-5)
    code, stdout, err = run_cli(["classify", "--model", str(out), "-l", "好,坏", texts[0]], capsys)  # options override
    assert code == 0 and set(json.loads(stdout)["scores"]) == {"好", "坏"}
    meta = json.loads((out / "nspzero_tuning.json").read_text(encoding="utf-8"))
    assert meta["template"] == [TEMPLATE] and meta["settings"]["batch_size"] == 4 and len(meta["epochs"]) == 2


# the child runs `nspzero tune` and stops in epoch 2's third step (epoch 1 saved): there it is killed
PAUSED_CHILD = """
import sys, time
import torch
torch.set_num_threads(1)  # as the test process runs: the same kernels give the same bits
from nspzero.tuning import trainer
real, steps = trainer.step_loss, []
def step_loss(*args):
    steps.append(1)
    if len(steps) == {pause_at}:
        open({marker!r}, "w").close()
        time.sleep(600)
    return real(*args)
trainer.step_loss = step_loss
from nspzero.cli import main
main(sys.argv[1:])
"""


def test_a_sigkilled_tune_leaves_no_output_and_resume_equals_an_uninterrupted_run(decisive_model_dir, train,
                                                                                   tmp_path, capsys):
    from safetensors.torch import load_file

    args = ["--epochs", "3", "--lr", "1e-3", "--batch-size", "1"]
    killed, whole, marker = tmp_path / "killed", tmp_path / "whole", tmp_path / "paused"
    state = tmp_path / ".killed.tune-state" / "state.pt"
    code = PAUSED_CHILD.format(pause_at=len(ROWS) + 3, marker=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", code, *tune_argv(decisive_model_dir, train, killed, *args)],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists() and state.exists(), "the child never reached epoch 2"
        os.kill(proc.pid, signal.SIGKILL)  # mid-epoch 2 (epoch 1 is saved)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not killed.exists()
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, killed, *args), capsys)
    assert code == 2 and "--resume" in err and not killed.exists()
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, killed, *args, "--resume"), capsys)
    assert code == 0, err
    assert not state.parent.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no leftovers
    assert "epoch 2/3" in err and "epoch 1/3" not in err  # it went on from epoch 2
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, whole, *args), capsys)
    assert code == 0, err
    a, b = load_file(str(killed / "model.safetensors")), load_file(str(whole / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert [e["epoch"] for e in json.loads((killed / "nspzero_tuning.json").read_text())["epochs"]] == [1, 2, 3]


@pytest.mark.parametrize("rows, needle", [
    ([("东西很好", "好"), ("一二三四五", "差")], "train.jsonl:2: target '差' is not one of the labels"),
    ([("东西很好", "好"), ("一二三四五", "好")], "at least 2 classes"),
    ([("东西很好", "好")], "at least 2 labelled texts"),
    ([("东西很好", "好"), ("  ", "坏")], "train.jsonl:2"),
])
def test_bad_training_data_is_one_line_and_nothing_is_written(decisive_model_dir, tmp_path, capsys, rows, needle):
    train = write_rows(tmp_path / "train.jsonl", rows)
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, tmp_path / "out", "--epochs", "1"), capsys)
    assert code != 0 and needle in err and len(err.strip().splitlines()) == 1, err
    assert sorted(os.listdir(tmp_path)) == ["train.jsonl"]


def test_outputs_that_would_overwrite_are_refused(decisive_model_dir, headless_model_dir, train, tmp_path, capsys):
    for out in (decisive_model_dir, os.path.join(decisive_model_dir, "tuned")):
        code, _, err = run_cli(tune_argv(decisive_model_dir, train, out, "--epochs", "1"), capsys)
        assert code == 2 and "model folder" in err, err
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, existing, "--epochs", "1"), capsys)
    assert code == 2 and "already exists" in err and os.listdir(existing) == ["keep.txt"]
    code, _, err = run_cli(tune_argv(headless_model_dir, train, tmp_path / "out", "--epochs", "1"), capsys)
    assert code == 1 and not (tmp_path / "out").exists(), err
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, tmp_path / "out", "--resume"), capsys)
    assert code == 2 and "nothing to resume" in err


def test_conflicting_duplicates_are_a_warning(decisive_model_dir, tmp_path, capsys):
    train = write_rows(tmp_path / "train.jsonl", [*ROWS, ("东西很好", "坏")])
    code, _, err = run_cli(tune_argv(decisive_model_dir, train, tmp_path / "out", "--epochs", "1"), capsys)
    assert code == 0 and "train.jsonl:7: the same text as" in err, err
