"""nspzero.formats.checkpoints: Google TF1 and UER-py BERT checkpoints give the original model's scores (1e-5),
loaded directly and after convert_checkpoint; bad checkpoints are one-line errors that write nothing."""
from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import pytest
import torch

from checkpoint_writers import (UER_GENERATIONS, bert_config_json, google_tensors, uer_config_json, uer_state,
                                write_google_bert, write_tf_bundle)
from conftest import build_model_dir, one_line
from nspzero import NSPClassifier
from nspzero.formats.checkpoints import convert_checkpoint, google_name, load_checkpoint, uer_name
from nspzero.errors import ModelError, UsageError

FIRST = ["这是一则体育新闻", "hello world", "今天比赛球队赢了", "股票市场上涨"]
SECOND = ["比赛球队赢了", "good movie", "财经", "这是科技"]


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """(model folder, BertForPreTraining, reference scores) of a tiny random BERT with a decisive NSP head."""
    from transformers import BertForPreTraining

    folder = build_model_dir(tmp_path_factory.mktemp("orig"), seed=7, scale_nsp=3.0, initializer_range=0.2)
    model = BertForPreTraining.from_pretrained(folder).eval()
    scores = NSPClassifier.from_pretrained(folder, device="cpu", max_length=64).score_pairs(FIRST, SECOND)
    assert np.ptp(scores) > 0.05  # the comparison below means something
    return folder, model, scores


def scores_of(path) -> np.ndarray:
    return NSPClassifier.from_pretrained(str(path), device="cpu", max_length=64).score_pairs(FIRST, SECOND)



def assert_nothing_written(out):
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if ".converting-" in p.name] == []


def test_google_name_mapping():
    assert google_name("bert/embeddings/word_embeddings") == ("bert.embeddings.word_embeddings.weight", False)
    assert google_name("bert/encoder/layer_11/attention/self/query/kernel") == \
        ("bert.encoder.layer.11.attention.self.query.weight", True)
    assert google_name("bert/encoder/layer_0/output/LayerNorm/beta") == ("bert.encoder.layer.0.output.LayerNorm.bias", False)
    assert google_name("bert/pooler/dense/kernel") == ("bert.pooler.dense.weight", True)
    assert google_name("cls/seq_relationship/output_weights") == ("cls.seq_relationship.weight", False)
    assert google_name("cls/seq_relationship/output_bias") == ("cls.seq_relationship.bias", False)
    for skipped in ("global_step", "bert/pooler/dense/kernel/adam_m", "bert/pooler/dense/kernel/adam_v",
                    "cls/predictions/output_bias", "cls/predictions/transform/dense/kernel"):
        assert google_name(skipped)[0] is None


def test_uer_name_mapping_every_generation():
    assert uer_name("embedding.word_embedding.weight") == uer_name("embedding.word.embedding.weight") \
        == "bert.embeddings.word_embeddings.weight"
    assert uer_name("encoder.transformer.3.layer_norm_1.gamma") == uer_name("encoder.transformer.3.layer_norm_1.weight") \
        == "bert.encoder.layer.3.attention.output.LayerNorm.weight"
    for key in ("target.nsp_linear_2.bias", "target.sp_linear_2.bias", "target.sp.linear_2.bias"):
        assert uer_name(key) == "cls.seq_relationship.bias"
    for key in ("target.nsp_linear_1.weight", "target.sp_linear_1.weight", "target.sp.linear_1.weight"):
        assert uer_name(key) == "bert.pooler.dense.weight"
    for key in ("target.mlm_linear_1.weight", "target.mlm.linear_2.bias", "target.layer_norm.gamma",
                "target.mlm.layer_norm.beta"):
        assert uer_name(key) is None


@pytest.mark.parametrize("shards", [1, 2])
def test_google_folder_direct_and_converted(original, tmp_path, shards):
    folder, model, expected = original
    google = write_google_bert(str(tmp_path / "chinese_L-2_H-32_A-2"), model, os.path.join(folder, "vocab.txt"),
                               num_shards=shards)
    np.testing.assert_allclose(scores_of(google), expected, atol=1e-5, rtol=0)
    out = convert_checkpoint(google, tmp_path / "converted")
    assert {"config.json", "model.safetensors", "vocab.txt"} <= set(os.listdir(out))
    from transformers import BertForNextSentencePrediction

    plain, info = BertForNextSentencePrediction.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    np.testing.assert_allclose(scores_of(out), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("generation", sorted(UER_GENERATIONS))
def test_uer_every_generation(original, tmp_path, generation):
    folder, model, expected = original
    torch.save(uer_state(model, generation), tmp_path / "uer_model.bin")
    (tmp_path / "uer_config.json").write_text(json.dumps(uer_config_json(model)))
    out = convert_checkpoint(tmp_path / "uer_model.bin", tmp_path / "converted", config=str(tmp_path / "uer_config.json"),
                             vocab=os.path.join(folder, "vocab.txt"), source="uer" if generation == "2022" else None)
    np.testing.assert_allclose(scores_of(out), expected, atol=1e-5, rtol=0)
    # directly, with vocab.txt and a BERT config beside the .bin
    shutil.copy(os.path.join(folder, "vocab.txt"), tmp_path / "vocab.txt")
    (tmp_path / "bert_config.json").write_text(json.dumps(bert_config_json(model)))
    np.testing.assert_allclose(scores_of(tmp_path / "uer_model.bin"), expected, atol=1e-5, rtol=0)


def test_uer_heads_default_with_notice(original, tmp_path, caplog):
    folder, model, _ = original
    torch.save(uer_state(model), tmp_path / "m.bin")
    with caplog.at_level(logging.WARNING, logger="nspzero"):
        checkpoint = load_checkpoint(str(tmp_path / "m.bin"), vocab=os.path.join(folder, "vocab.txt"))
    assert checkpoint.model.config.num_attention_heads == 1  # hidden 32 / 64, at least 1
    assert "hidden_size/64" in caplog.text


def test_uer_without_nsp_target_writes_nothing(original, tmp_path):
    folder, model, _ = original
    torch.save(uer_state(model, nsp=False), tmp_path / "mlm_only.bin")
    out = tmp_path / "out"
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "mlm_only.bin", out, vocab=os.path.join(folder, "vocab.txt"))
    one_line(info, "mlm_only.bin", "next-sentence-prediction head")
    assert_nothing_written(out)


def test_google_without_pooler_or_head_writes_nothing(original, tmp_path):
    folder, model, _ = original
    vocab = os.path.join(folder, "vocab.txt")
    for what, kwargs in (("pooler", {"pooler": False}), ("next-sentence-prediction head", {"nsp": False})):
        google = write_google_bert(str(tmp_path / what.split()[0]), model, vocab, **kwargs)
        out = tmp_path / f"out-{what.split()[0]}"
        with pytest.raises(ModelError) as info:
            convert_checkpoint(google, out)
        one_line(info, what)
        assert_nothing_written(out)


def test_corrupt_bundle_and_missing_shard_write_nothing(original, tmp_path):
    folder, model, _ = original
    google = write_google_bert(str(tmp_path / "g"), model, os.path.join(folder, "vocab.txt"), num_shards=2)
    shard = os.path.join(google, "bert_model.ckpt.data-00001-of-00002")
    data = bytearray(open(shard, "rb").read())
    data[100] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ModelError) as info:
        convert_checkpoint(google, out)
    one_line(info, "checksum")
    assert_nothing_written(out)
    os.remove(shard)
    with pytest.raises(ModelError) as info:
        convert_checkpoint(google, out)
    one_line(info, "data-00001-of-00002", "missing")
    assert_nothing_written(out)
    index = os.path.join(google, "bert_model.ckpt.index")
    open(index, "r+b").truncate(os.path.getsize(index) // 2)
    with pytest.raises(ModelError) as info:
        convert_checkpoint(google, out)
    one_line(info, "bert_model.ckpt.index")
    assert_nothing_written(out)


def test_non_float_dtypes_write_nothing(original, tmp_path):
    folder, model, _ = original
    vocab = os.path.join(folder, "vocab.txt")
    tensors = google_tensors(model)
    tensors["bert/pooler/dense/bias"] = tensors["bert/pooler/dense/bias"].astype(np.int32)
    (tmp_path / "g").mkdir()
    write_tf_bundle(str(tmp_path / "g" / "bert_model.ckpt"), tensors)
    shutil.copy(vocab, tmp_path / "g" / "vocab.txt")
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "g", tmp_path / "out")
    one_line(info, "bert/pooler/dense/bias", "int32")
    assert_nothing_written(tmp_path / "out")
    state = uer_state(model)
    state["target.nsp_linear_2.bias"] = state["target.nsp_linear_2.bias"].long()
    torch.save(state, tmp_path / "u.bin")
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "u.bin", tmp_path / "out2", vocab=vocab)
    one_line(info, "target.nsp_linear_2.bias", "int64")
    assert_nothing_written(tmp_path / "out2")


def test_out_dir_rules_and_bad_inputs(original, tmp_path):
    folder, model, expected = original
    vocab = os.path.join(folder, "vocab.txt")
    torch.save(uer_state(model), tmp_path / "m.bin")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(UsageError) as info:
        convert_checkpoint(tmp_path / "m.bin", busy, vocab=vocab)
    one_line(info, "not an empty folder")
    assert os.listdir(busy) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "cfg.json").write_text(json.dumps(uer_config_json(model)))
    convert_checkpoint(tmp_path / "m.bin", empty, vocab=vocab, config=str(tmp_path / "cfg.json"))
    np.testing.assert_allclose(scores_of(empty), expected, atol=1e-5, rtol=0)
    with pytest.raises(ModelError) as info:  # a pickle that is not a state dict
        (tmp_path / "junk.bin").write_bytes(b"\x80\x04not a pickle at all")
        convert_checkpoint(tmp_path / "junk.bin", tmp_path / "o1", vocab=vocab)
    one_line(info, "junk.bin")
    with pytest.raises(ModelError) as info:  # no vocab anywhere
        convert_checkpoint(tmp_path / "m.bin", tmp_path / "o2")
    one_line(info, "--vocab")
    (tmp_path / "novocab.txt").write_text("a\nb\n[SEP]\n")
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "m.bin", tmp_path / "o3", vocab=str(tmp_path / "novocab.txt"))
    one_line(info, "[CLS]/[PAD]")
    (tmp_path / "wrong.json").write_text(json.dumps({**uer_config_json(model), "emb_size": 48, "hidden_size": 48}))
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "m.bin", tmp_path / "o4", vocab=vocab, config=str(tmp_path / "wrong.json"))
    one_line(info, "hidden_size=48", "32")
    with pytest.raises(UsageError):
        convert_checkpoint(tmp_path / "m.bin", tmp_path / "o5", vocab=vocab, source="tf2")
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "nothing-here", tmp_path / "o6")
    one_line(info, "does not exist")
    for name in ("o1", "o2", "o3", "o4", "o5", "o6"):
        assert_nothing_written(tmp_path / name)


def test_uer_sentence_order_target_refused(original, tmp_path):
    folder, model, _ = original
    state = uer_state(model)
    for leaf in ("weight", "bias"):
        state[f"target.sop_linear_2.{leaf}"] = state.pop(f"target.nsp_linear_2.{leaf}")
    torch.save(state, tmp_path / "albert_like.bin")
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "albert_like.bin", tmp_path / "out", vocab=os.path.join(folder, "vocab.txt"))
    one_line(info, "sentence-order-prediction")
    assert_nothing_written(tmp_path / "out")


def test_transformers_state_dict_without_config_is_named(original, tmp_path):
    _, model, _ = original
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelError) as info:
        load_checkpoint(str(tmp_path / "pytorch_model.bin"))
    one_line(info, "transformers state dict", "config.json")


# ---- malformed foreign checkpoints and failing writes: one line, nothing written ----------------------
@pytest.mark.parametrize("key, value, needle", [
    ("num_attention_heads", "12", "num_attention_heads should be a valid integer, got str '12'"),
    ("hidden_size", True, "hidden_size should be a valid integer, got bool True"),
    ("layer_norm_eps", "tiny", "layer_norm_eps should be a valid number, got str 'tiny'"),
    ("hidden_act", ["gelu"], "hidden_act should be a valid string, got list ['gelu']"),
    ("vocab_size", 2.5, "vocab_size should be a valid integer, got float 2.5"),
    ("type_vocab_size", 1, "type_vocab_size should be greater than or equal to 2, got int 1"),
    ("num_hidden_layers", 10000000, "num_hidden_layers should be less than or equal to 1024, got int 10000000"),
    ("position_embedding_type", "relative_key", "position_embedding_type 'relative_key' is not computed by "
                                                "transformers"),
])
def test_config_field_of_a_wrong_type_or_unbounded_is_one_line(original, tmp_path, key, value, needle):
    folder, model, _ = original
    google = write_google_bert(str(tmp_path / "g"), model, os.path.join(folder, "vocab.txt"))
    config = json.loads(open(os.path.join(google, "bert_config.json")).read())
    (tmp_path / "g" / "bert_config.json").write_text(json.dumps({**config, key: value}))
    with pytest.raises(ModelError) as info:
        convert_checkpoint(google, tmp_path / "out")
    one_line(info, "bert_config.json: " + needle)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("key", ["initializer_range", "layer_norm_eps", "hidden_act"])
def test_config_field_left_null_takes_its_default(original, tmp_path, key):
    """A TF bert_config.json may write `initializer_range: null` (a TypeError in convert before): a null
    field is an absent one, and the converted folder scores as the checkpoint."""
    folder, model, expected = original
    google = write_google_bert(str(tmp_path / "g"), model, os.path.join(folder, "vocab.txt"))
    config = json.loads(open(os.path.join(google, "bert_config.json")).read())
    (tmp_path / "g" / "bert_config.json").write_text(json.dumps({**config, key: None}))
    out = convert_checkpoint(google, tmp_path / "out")
    np.testing.assert_allclose(scores_of(out), expected, atol=1e-5, rtol=0)


def test_uer_state_dict_with_keys_that_are_not_names_is_one_line(original, tmp_path):
    folder, model, _ = original
    state = uer_state(model)
    state[3] = torch.zeros(1)
    torch.save(state, tmp_path / "u.bin")
    with pytest.raises(ModelError) as info:
        convert_checkpoint(tmp_path / "u.bin", tmp_path / "out", vocab=os.path.join(folder, "vocab.txt"))
    one_line(info, "u.bin has a int key (3) where a state dict has parameter names")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("shape, needle", [
    ((4, 8, 2), "has shape [4, 8, 2]; it must be a matrix (2 dimensions)"),
    ((64,), "has shape [64]; it must be a matrix"),
    ("config", "but the config says vocab_size=999"),
])
def test_embeddings_are_checked_against_the_config_before_they_are_read(original, tmp_path, monkeypatch, shape, needle):
    import nspzero.formats.tf_bundle as tf_bundle

    folder, model, _ = original
    tensors = google_tensors(model)
    if shape != "config":
        tensors["bert/embeddings/word_embeddings"] = np.zeros(shape, np.float32)
    (tmp_path / "g").mkdir()
    write_tf_bundle(str(tmp_path / "g" / "bert_model.ckpt"), tensors)
    shutil.copy(os.path.join(folder, "vocab.txt"), tmp_path / "g" / "vocab.txt")
    if shape == "config":
        (tmp_path / "g" / "bert_config.json").write_text(json.dumps({**bert_config_json(model), "vocab_size": 999}))
    read = tf_bundle.TFBundle.read
    monkeypatch.setattr(tf_bundle.TFBundle, "read", lambda self, name, **kw: pytest.fail(f"read {name}")
                        if name == "bert/embeddings/word_embeddings" else read(self, name, **kw))
    with pytest.raises(ModelError) as info:
        load_checkpoint(str(tmp_path / "g"))
    one_line(info, "bert/embeddings/word_embeddings", needle)


def test_a_full_disk_during_convert_is_one_line_and_writes_nothing(original, tmp_path, monkeypatch):
    from safetensors import SafetensorError
    from transformers import PreTrainedModel

    folder, model, _ = original
    google = write_google_bert(str(tmp_path / "g"), model, os.path.join(folder, "vocab.txt"))

    def disk_full(self, save_directory, **kwargs):
        open(os.path.join(save_directory, "model.safetensors"), "wb").write(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", disk_full)
    with pytest.raises(ModelError) as info:
        convert_checkpoint(google, tmp_path / "out")
    assert str(info.value) == (f"could not write {tmp_path / 'out'}: Error while serializing: I/O error: No space "
                               f"left on device (os error 28); nothing was written there")
    assert_nothing_written(tmp_path / "out")


def test_a_google_folder_reads_its_vocab_and_its_index_once(original, tmp_path, monkeypatch):
    """The load checks each thing once: the vocab (check_vocab at conversion, not again by the
    tokenizer check), and each variable's shape and shard range (check_shards, not again per read)."""
    from nspzero.formats import checkpoints, tf_bundle
    from nspzero.loading import load_nsp_model

    folder, model, _ = original
    google = write_google_bert(str(tmp_path / "g"), model, os.path.join(folder, "vocab.txt"), num_shards=2)
    vocab_checks, shard_checks = [], []
    check_vocab, check_shards = checkpoints.check_vocab, tf_bundle.TFBundle.check_shards
    monkeypatch.setattr(checkpoints, "check_vocab", lambda *a, **kw: vocab_checks.append(a) or check_vocab(*a, **kw))
    monkeypatch.setattr(tf_bundle.TFBundle, "check_shards",
                        lambda self: shard_checks.append(self.prefix) or check_shards(self))
    load_nsp_model(google)
    assert len(vocab_checks) == 1 and len(shard_checks) == 1
