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


def test_path_digest_knows_a_model_folder_by_its_files_without_loading_it(model_copy, tmp_path):
    """What `classify --resume` fingerprints (the Ray driver never loads the model): a weight or
    vocab file changed in place changes it; documentation beside the model does not; a hub name
    that is not cached here is known by its name."""
    from pathlib import Path

    from nspzero.digests import path_digest

    first = path_digest(model_copy)
    assert path_digest(model_copy) == first and len(first) == 64
    Path(model_copy, "README.md").write_text("notes\n", encoding="utf-8")
    assert path_digest(model_copy) == first
    vocab = Path(model_copy, "vocab.txt")
    vocab.write_text(vocab.read_text(encoding="utf-8").replace("[UNK]", "[UNK]\n"), encoding="utf-8")
    second = path_digest(model_copy)
    assert second != first
    weights = Path(model_copy, "model.safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert path_digest(model_copy) not in (first, second)
    assert path_digest("nobody/no-such-model") == path_digest("nobody/no-such-model") != \
        path_digest("nobody/another-model")
    assert path_digest("nobody/no-such-model").startswith("name:")
