"""Tuned folders (nspzero.tuning.saved): written whole, read back as request defaults, and loaded by every door."""
import json
import os

import numpy as np
import pytest

from conftest import run_cli
from nspzero.classifier import NSPClassifier
from nspzero.errors import DataError, ModelError, UsageError
from nspzero.tuning import tuned_defaults
from nspzero.tuning.saved import TUNING_FILE, check_output, with_defaults

TEXTS = ["东西很好", "一二三四五", "天南海北", "物归原主了", "高视阔步", "不共戴天"]
TARGETS = ["pos", "neg", "pos", "neg", "pos", "neg"]
LABELS = {"pos": ["很好", "不错"], "neg": "很差"}


@pytest.fixture(scope="module")
def fitted(decisive_model_dir):
    return NSPClassifier.from_pretrained(decisive_model_dir).fit(
        TEXTS, TARGETS, labels=LABELS, template=["东西{label}", "{label}"], epochs=2, learning_rate=1e-3)


@pytest.fixture(scope="module")
def tuned(fitted, tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("tuned") / "out")
    fitted.save_pretrained(folder)
    return folder


def test_the_folder_is_a_transformers_folder_with_its_request_and_record(tuned):
    assert {"config.json", "model.safetensors", "vocab.txt", TUNING_FILE} <= set(os.listdir(tuned))
    meta = json.loads(open(os.path.join(tuned, TUNING_FILE), encoding="utf-8").read())
    assert meta["labels"] == {"pos": ["很好", "不错"], "neg": ["很差"]} and meta["template"] == ["东西{label}", "{label}"]
    assert meta["settings"]["epochs"] == 2 and [e["epoch"] for e in meta["epochs"]] == [1, 2] and meta["best_epoch"] == 2
    assert tuned_defaults(tuned) == {"labels": meta["labels"], "template": meta["template"], "placement": "prefix",
                                     "combine": "mean"}


def test_from_pretrained_classifies_without_labels_as_the_fitted_model(fitted, tuned):
    want = fitted.classify(TEXTS)
    got = NSPClassifier.from_pretrained(tuned).classify(TEXTS)
    for g, w in zip(got, want):
        assert g.label == w.label and max(abs(g.scores[k] - w.scores[k]) for k in w.scores) < 1e-5
    only = NSPClassifier.from_pretrained(tuned).classify(TEXTS[0], labels=["好", "差"])  # explicit labels override
    assert set(only.scores) == {"好", "差"}


def test_explicit_fields_override_and_a_prompt_set_brings_its_own():
    tuned = {"labels": {"a": ["x"], "b": ["y"]}, "template": ["t{label}"], "placement": "suffix", "combine": "mean"}
    assert with_defaults(tuned, None, None, None, None)["placement"] == "suffix"
    assert with_defaults(tuned, ["c", "d"], None, "prefix", None) == {
        "labels": ["c", "d"], "template": ["t{label}"], "placement": "prefix", "combine": "mean"}
    assert with_defaults(tuned, None, None, None, None, prompt="tnews")["labels"] is None
    assert with_defaults(None, None, "{label}", None, None)["template"] == "{label}"


def test_a_failed_write_leaves_nothing(fitted, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fitted.scorer.model, "save_pretrained", broken)
    with pytest.raises(ModelError, match="nothing was written"):
        fitted.save_pretrained(str(tmp_path / "out"))
    assert os.listdir(tmp_path) == []


def test_what_cannot_be_saved_or_read_is_one_line(decisive_model_dir, tmp_path):
    with pytest.raises(UsageError, match="call fit"):
        NSPClassifier.from_pretrained(decisive_model_dir).save_pretrained(str(tmp_path / "out"))
    for out in (decisive_model_dir, os.path.join(decisive_model_dir, "sub")):
        with pytest.raises(UsageError, match="model folder"):
            check_output(out, decisive_model_dir)
    assert tuned_defaults(decisive_model_dir) is None
    (tmp_path / TUNING_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=TUNING_FILE):
        tuned_defaults(str(tmp_path))


@pytest.mark.parametrize("dtype", ["int8", "bfloat16"])
def test_reduced_precisions_load_a_tuned_folder(fitted, tuned, dtype):
    want = fitted.classify(TEXTS)
    got = NSPClassifier.from_pretrained(tuned, dtype=dtype).classify(TEXTS)
    assert [g.label for g in got] == [w.label for w in want] or dtype == "int8"  # int8's error may flip a near tie
    assert max(abs(g.scores[k] - w.scores[k]) for g, w in zip(got, want) for k in w.scores) < 0.05


def test_the_doors_read_a_tuned_folder(fitted, tuned, capsys, tmp_path):
    """link (no labels involved), the server (a body without labels) and export-onnx (the labels go along)."""
    want = fitted.classify(TEXTS[:2])
    link = tmp_path / "link.jsonl"
    link.write_text(json.dumps({"text": "东西很好", "candidates": [{"id": "a", "description": "很好"},
                                                                  {"id": "b", "description": "很差"}]},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    code, out, err = run_cli(["link", "--model", tuned, "-i", str(link)], capsys)
    assert code == 0 and json.loads(out)["entity"] in ("a", "b"), err
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    with TestClient(create_app(NSPClassifier.from_pretrained(tuned))) as client:
        response = client.post("/classify", json={"texts": TEXTS[:2]})
        health = client.get("/health").json()  # the page leaves labels and templates to the tuned folder
    assert health["tuned_labels"] == list(want[0].scores)
    assert response.status_code == 200, response.text
    for g, w in zip(response.json()["results"], want):
        assert g["label"] == w.label and max(abs(g["scores"][k] - w.scores[k]) for k in w.scores) < 1e-5
    pytest.importorskip("onnxruntime")
    exported = tmp_path / "onnx"
    code, _, err = run_cli(["export-onnx", "--model", tuned, str(exported)], capsys)
    assert code == 0, err
    got = NSPClassifier.from_pretrained(str(exported)).classify(TEXTS[:2])
    assert max(abs(g.scores[k] - w.scores[k]) for g, w in zip(got, want) for k in w.scores) < 1e-4


def test_eval_runs_on_a_tuned_folder(tuned, tmp_path, capsys):
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data", n=4)
    code, _, err = run_cli(["eval", "-m", tuned, "-d", str(data), "-o", str(tmp_path / "runs"), "--tasks", "eprstmt"],
                           capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "runs" / "results.json").read_text(encoding="utf-8"))
    assert "eprstmt" in results["tasks"]
