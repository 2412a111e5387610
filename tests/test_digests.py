"""digests.py: a model's and a tokenizer's content identified cheaply — every tensor (int8's packed
weights too), file hashes memoised until the file changes."""
import os
import shutil

import pytest
import torch

import nspzero.digests as digests
from nspzero import NSPScorer
from nspzero.digests import file_digests, tensor_digest


@pytest.fixture(autouse=True)
def _memo_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "memo"))


@pytest.fixture
def model_copy(model_dir, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return str(dest)


def test_tensor_digest_covers_int8_packed_weights(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8", backend="torch")
    before = tensor_digest(scorer.model)
    other = NSPScorer.from_pretrained(model_dir, device="cpu")
    with torch.no_grad():
        other.model.bert.encoder.layer[1].output.dense.weight.mul_(3.0)
    requantized = NSPScorer(other.tokenizer, other.model, device="cpu", dtype="int8", backend="torch")
    assert tensor_digest(requantized.model) != before


def test_file_hashes_are_memoised_until_the_file_changes(model_copy, monkeypatch):
    path = os.path.join(model_copy, "model.safetensors")
    calls = []
    real = digests._hash_file
    monkeypatch.setattr(digests, "_hash_file", lambda p: calls.append(p) or real(p))
    first = file_digests([path])[path]
    assert file_digests([path])[path] == first and len(calls) == 1
    with open(path, "r+b") as handle:  # same size, same path: new contents
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 1]))
    assert file_digests([path])[path] != first and len(calls) == 2
