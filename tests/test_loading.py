"""nspzero.loading: offline-first hub names, local-path readings, the embedded default model, and
one-line ModelErrors (naming the file and the fix) for every broken checkpoint file."""
from __future__ import annotations

import json
import os
import shutil
import socket
import time

import pytest

from conftest import one_line
from nspzero.errors import ModelError, UsageError
from nspzero.loading import _is_local_path, config_file_path, default_model_name, load_nsp_model



def test_default_model_name(monkeypatch, tmp_path):
    monkeypatch.delenv("NSP_MODEL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_file_path() == str(tmp_path / "nspzero" / "config.yaml")
    assert default_model_name() == ("bert-base-chinese", "built-in default")
    (tmp_path / "nspzero").mkdir()
    (tmp_path / "nspzero" / "config.yaml").write_text("model: hfl/chinese-bert-wwm-ext\n")
    assert default_model_name() == ("hfl/chinese-bert-wwm-ext", config_file_path())
    monkeypatch.setenv("NSP_MODEL", "models/mine")
    assert default_model_name() == ("models/mine", "NSP_MODEL")
    monkeypatch.delenv("NSP_MODEL")
    (tmp_path / "nspzero" / "config.yaml").write_text("model: [a, b]\n")
    with pytest.raises(UsageError) as info:
        default_model_name()
    one_line(info, "config.yaml", "'model'")
    (tmp_path / "nspzero" / "config.yaml").write_text("model: : :\n  - [\n")
    with pytest.raises(UsageError) as info:
        default_model_name()
    one_line(info, "cannot read nspzero config")
    (tmp_path / "nspzero" / "config.yaml").write_text("other: 1\n")
    assert default_model_name() == ("bert-base-chinese", "built-in default")


def test_local_path_readings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert not _is_local_path("models/mybert")  # could be a hub org/name
    (tmp_path / "models").mkdir()
    assert _is_local_path("models/mybert")  # its first component exists here
    assert _is_local_path("mixed_corpus_bert_base_model.bin") and _is_local_path("x/bert_model.ckpt")
    assert not _is_local_path("bert-base-chinese")
    with pytest.raises(ModelError) as info:
        load_nsp_model("models/mybert")
    one_line(info, "models/mybert", "does not exist")


@pytest.mark.parametrize("name", ["nope/", "my model", "org/name/", "models\\mybert"])
def test_what_cannot_be_a_hub_id_is_a_missing_folder_not_a_download_hint(name, monkeypatch, tmp_path):
    """A trailing slash or a space cannot be in a hub id: the message says the folder does not exist
    rather than suggesting `hf download nope/`."""
    monkeypatch.chdir(tmp_path)
    assert _is_local_path(name)
    with pytest.raises(ModelError) as info:
        load_nsp_model(name)
    message = one_line(info, "does not exist")
    assert "hf download" not in message


def test_hub_name_offline_fails_fast_with_both_readings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        load_nsp_model("nosuchorg/nosuchbert")
    assert time.monotonic() - start < 5
    one_line(info, "no local folder nosuchorg/nosuchbert", "HF_HUB_OFFLINE", "--model DIR")


def test_hub_unreachable_fails_fast(monkeypatch, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        load_nsp_model("nosuchbert-xyz")
    assert time.monotonic() - start < 5
    message = one_line(info, "nosuchbert-xyz", "cannot be reached", "--model DIR")
    assert "no local folder" not in message  # one reading only: no slash, not a path


@pytest.fixture()
def broken(model_dir, tmp_path):
    """A fresh copy of the tiny model folder to damage."""
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_truncated_empty_corrupt_safetensors(broken):
    weights = broken / "model.safetensors"
    data = weights.read_bytes()
    for damaged, why in ((data[: len(data) // 2], "truncated"), (b"", "too short"),
                         (b"\xff" * 8 + data[8:], "header length"), (data[:8] + b"[" + data[9:], "corrupt")):
        weights.write_bytes(damaged)
        with pytest.raises(ModelError) as info:
            load_nsp_model(str(broken))
        one_line(info, "model.safetensors", "download the weights again")


def test_unloadable_pickle(broken):
    os.remove(broken / "model.safetensors")
    (broken / "pytorch_model.bin").write_bytes(b"PK\x03\x04 this zip is cut short")
    with pytest.raises(ModelError) as info:
        load_nsp_model(str(broken))
    one_line(info, "pytorch_model.bin", "download it again")


@pytest.mark.parametrize("text, needle", [("null", "not a JSON object"), ("{oops", "not a valid JSON file")])
def test_bad_config_json(broken, text, needle):
    (broken / "config.json").write_text(text)
    with pytest.raises(ModelError) as info:
        load_nsp_model(str(broken))
    one_line(info, "config.json", needle)


def test_unknown_hidden_act(broken):
    config = json.loads((broken / "config.json").read_text())
    config["hidden_act"] = "gelu_tanh_sigmoid_magic"
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as info:
        load_nsp_model(str(broken))
    one_line(info, "config.json", "unknown hidden_act 'gelu_tanh_sigmoid_magic'")


def test_vocab_without_special_tokens_refused_at_load(broken):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (broken / name).exists():
            os.remove(broken / name)
    tokens = (broken / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (broken / "vocab.txt").write_text("\n".join(t if t != "[CLS]" else "[unused1]" for t in tokens) + "\n",
                                      encoding="utf-8")
    with pytest.raises(ModelError) as info:
        load_nsp_model(str(broken))
    one_line(info, "[CLS]", "vocab.txt")


def test_malformed_tokenizer_json(broken):
    (broken / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(ModelError) as info:
        load_nsp_model(str(broken))
    one_line(info, "tokenizer.json", "tokenizer")


def test_google_folder_and_prefix_load_directly():
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "tf_bert")
    for name in (fixture, os.path.join(fixture, "bert_model.ckpt")):
        tokenizer, model = load_nsp_model(name)
        assert type(model).__name__ == "BertForNextSentencePrediction" and not model.training
        assert tokenizer.convert_tokens_to_ids("[CLS]") == 2


# ==== Bad-input rows (moved here from test_bad_input.py: model folders that cannot be loaded) ====
from bad_input import case, check_case, env, gpt2_model_dir  # noqa: E402,F401  (fixtures)
from nspzero import NSPClassifier  # noqa: E402


def _load(kind: str):
    return lambda e: NSPClassifier.from_pretrained(e.model(kind))


LOADING_BAD_INPUT = [case(f"model-{name}", _load(kind), ModelError, message) for name, kind, message in [
    ("missing", "missing", "does not exist"),
    ("dir-without-config", "empty", "has no config.json"),
    ("bad-config-json", "badcfg", "not a valid JSON file"),
    ("without-weights", "onlycfg", "could not load the weights"),
    ("not-bert", "gpt2", "is a 'gpt2' model, which has no next-sentence-prediction head"),
    ("without-nsp-head", "headless", "no trained weights for its next-sentence-prediction head (cls.seq_relationship"),
    ("without-vocab", "novocab", "vocab"),
]]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("fn, exc, message", LOADING_BAD_INPUT)
def test_loading_bad_input_is_a_one_line_error(env, fn, exc, message):
    check_case(fn, env, exc, message)
# ==== end of the moved bad-input rows ====


# ---- a folder whose only tokenizer file is vocab.txt (how Chinese ALBERT checkpoints ship) ---------------

def _vocab_only_folder(arch: str, folder) -> str:
    """A tiny random `arch` pre-training checkpoint with config.json, weights and vocab.txt, nothing else."""
    import torch
    import transformers as T

    from conftest import VOCAB

    os.makedirs(folder, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    common = dict(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, max_position_embeddings=64, initializer_range=0.2)
    config, model_class = {"albert": (T.AlbertConfig(embedding_size=16, **common), T.AlbertForPreTraining),
                           "megatron-bert": (T.MegatronBertConfig(**common), T.MegatronBertForPreTraining),
                           "bert": (T.BertConfig(**common), T.BertForPreTraining)}[arch]
    torch.manual_seed(3)
    model_class(config).save_pretrained(str(folder))
    return str(folder)


@pytest.mark.parametrize("arch", ["albert", "megatron-bert", "bert"])
def test_vocab_txt_only_folder_loads_as_wordpiece(arch, tmp_path):
    """No tokenizer_config.json: vocab.txt is read as the WordPiece vocab it is (BertTokenizer), for every
    architecture, and the scores equal those of the same folder with its tokenizer files saved."""
    from transformers import BertTokenizer

    from nspzero import NSPScorer
    from nspzero.scorer import Pair

    bare = _vocab_only_folder(arch, tmp_path / arch)
    tokenizer, _ = load_nsp_model(bare)
    reference = BertTokenizer.from_pretrained(bare)
    text = "今天比赛球队赢了 hello world"
    assert tokenizer(text, "体育")["input_ids"] == reference(text, "体育")["input_ids"]
    assert len(tokenizer) == len(reference)
    full = tmp_path / "full"
    shutil.copytree(bare, full)
    reference.save_pretrained(str(full))
    assert (full / "tokenizer_config.json").is_file()
    pairs = [Pair("今天比赛球队赢了", "体育新闻"), Pair("市场上涨", "财经新闻")]
    got = NSPScorer.from_pretrained(bare, max_length=32).score(pairs)
    want = NSPScorer.from_pretrained(str(full), max_length=32).score(pairs)
    assert abs(got - want).max() < 1e-6 and abs(got[0] - got[1]) > 1e-4


def test_tokenizer_config_naming_a_missing_file_says_which(tmp_path):
    """A tokenizer_config.json that names a SentencePiece class whose file is absent: the message names the
    class, the file it reads and both ways out, instead of 'put the vocab.txt beside config.json'."""
    folder = _vocab_only_folder("albert", tmp_path / "albert")
    (tmp_path / "albert" / "tokenizer_config.json").write_text('{"tokenizer_class": "AlbertTokenizer"}')
    with pytest.raises(ModelError) as info:
        load_nsp_model(folder)
    one_line(info, "tokenizer_config.json names AlbertTokenizer", "spiece.model", "delete tokenizer_config.json")
    assert "beside config.json" not in str(info.value)
