"""digests.py: a model's and a tokenizer's content identified cheaply — every tensor (int8's packed
weights too), file hashes memoised until the file changes (the memo lives in the session's temp
NSPZERO_CACHE_DIR, see conftest)."""
import os

import torch

import nspzero.digests as digests
from nspzero import NSPScorer
from nspzero.digests import file_digests, tensor_digest


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
