"""export-onnx writes a folder that loads with --model and scores like torch (fp32 within 1e-5, int8 within
its measured bound); the export is atomic and its errors are one line."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from conftest import run_cli  # noqa: E402

from nspzero import NSPScorer, Pair  # noqa: E402
from nspzero.errors import ModelError, UsageError  # noqa: E402
from nspzero.onnx_export import export_onnx  # noqa: E402

TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机，电脑游戏玩家也很多", "这次买的东西很差", "老师学生上学校"]
PAIRS = [Pair(f"这是一则{w}新闻", t, prompt="first") for t in TEXTS for w in ["体育", "财经", "科技"]]
PAIRS += [Pair("改朝换代", "他们今天比赛球队赢了", anchor=2), Pair("今天比赛", "球队赢了")]  # soft positions; S-C


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    return str(export_onnx(model_dir, tmp_path_factory.mktemp("onnx") / "out"))


def test_the_folder_holds_both_models_config_and_tokenizer(exported):
    files = set(os.listdir(exported))
    assert {"model.onnx", "model.int8.onnx", "config.json", "vocab.txt"} <= files
    assert not [f for f in os.listdir(os.path.dirname(exported)) if ".exporting-" in f]


def test_exported_fp32_scores_equal_torch(model_dir, exported):
    ref = NSPScorer.from_pretrained(model_dir, max_length=64, batch_size=4).score(PAIRS)
    onnx = NSPScorer.from_pretrained(exported, max_length=64, batch_size=4)
    assert getattr(onnx.model, "is_onnx", False) and onnx.model.variant == "float32"
    assert np.abs(onnx.score(PAIRS) - ref).max() < 1e-5


def test_exported_int8_is_within_its_bound(model_dir, exported):
    """ONNX Runtime int8 on the tiny model: measured max |ΔP| 2.7e-4 (random BERT-base shape: see README)."""
    ref = NSPScorer.from_pretrained(model_dir, max_length=64, batch_size=4).score(PAIRS)
    int8 = NSPScorer.from_pretrained(exported, max_length=64, batch_size=4, dtype="int8")
    assert int8.model.variant == "int8"
    assert np.abs(int8.score(PAIRS) - ref).max() < 1e-3


def test_classifier_runs_on_the_exported_folder(model_dir, exported):
    from nspzero import NSPClassifier

    labels = ["体育", "财经", "科技"]
    ref = NSPClassifier.from_pretrained(model_dir).classify(TEXTS, labels, template="这是一则{label}新闻")
    got = NSPClassifier.from_pretrained(exported).classify(TEXTS, labels, template="这是一则{label}新闻")
    assert [r.label for r in ref] == [g.label for g in got]


def test_the_server_and_long_texts_run_on_the_exported_folder(model_dir, exported):
    """The one classification path (windows, per-row labels) and the server, on ONNX Runtime."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from nspzero import NSPClassifier
    from nspzero.serve import create_app

    body = {"texts": ["今天比赛球队赢了。" * 12, "东西很好"], "labels_per_text": [["体育", "财经"], ["好", "差"]],
            "template": "这是{label}", "long_text": "chunk"}
    want = NSPClassifier.from_pretrained(model_dir, max_length=64).classify(
        body["texts"], labels_per_text=body["labels_per_text"], template=body["template"], long_text="chunk")
    with TestClient(create_app(NSPClassifier.from_pretrained(exported, max_length=64))) as client:
        response = client.post("/classify", json=body)
    assert response.status_code == 200, response.text
    for got, w in zip(response.json()["results"], want):
        assert got["label"] == w.label and max(abs(got["scores"][k] - w.scores[k]) for k in w.scores) < 1e-5


def test_exported_folder_refuses_other_dtypes(exported):
    with pytest.raises(UsageError, match="float32 or int8"):
        NSPScorer.from_pretrained(exported, dtype="bfloat16")


def test_missing_int8_file_is_named(exported, tmp_path):
    import shutil

    folder = tmp_path / "fp32-only"
    shutil.copytree(exported, folder)
    os.remove(folder / "model.int8.onnx")
    assert NSPScorer.from_pretrained(str(folder)).score(PAIRS[:2]).shape == (2,)
    with pytest.raises(UsageError, match="no model.int8.onnx"):
        NSPScorer.from_pretrained(str(folder), dtype="int8")


def test_broken_folders_are_model_errors(exported, tmp_path):
    import shutil

    no_config = tmp_path / "no-config"
    shutil.copytree(exported, no_config)
    os.remove(no_config / "config.json")
    with pytest.raises(ModelError, match="no config.json"):
        NSPScorer.from_pretrained(str(no_config))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(exported, corrupt)
    (corrupt / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="could not load .*model.onnx"):
        NSPScorer.from_pretrained(str(corrupt))


def test_missing_onnxruntime_names_the_extra(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    from nspzero.extras import install_hint

    with pytest.raises(UsageError) as info:
        NSPScorer.from_pretrained(exported)
    assert install_hint("onnx") in str(info.value)


def test_cli_export_and_its_errors(model_dir, exported, tmp_path, capsys):
    code, out, err = run_cli(["export-onnx", "--model", model_dir, str(tmp_path / "new"), "--no-int8"], capsys)
    assert code == 0, err
    assert "wrote" in out and sorted(f for f in os.listdir(tmp_path / "new") if f.endswith(".onnx")) == ["model.onnx"]
    code, _, err = run_cli(["export-onnx", "--model", model_dir, exported], capsys)
    assert code == 2 and "already exists and is not an empty folder" in err and "Traceback" not in err
    code, _, err = run_cli(["export-onnx", "--model", model_dir, str(tmp_path / "no" / "such" / "out")], capsys)
    assert code == 2 and "does not exist; create it first" in err
    code, _, err = run_cli(["export-onnx", "--model", str(tmp_path / "missing"), str(tmp_path / "o")], capsys)
    assert code == 1 and "does not exist" in err and not (tmp_path / "o").exists()


def test_a_failed_export_leaves_nothing(model_dir, tmp_path, monkeypatch):
    import nspzero.onnx_export as onnx_export

    def boom(*_args):
        raise RuntimeError("quantisation failed")

    monkeypatch.setattr(onnx_export, "quantize_int8", boom)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"could not write .*empty: quantisation failed; nothing was written there"):
        export_onnx(model_dir, tmp_path / "empty")
    assert os.listdir(tmp_path) == ["empty"] and os.listdir(tmp_path / "empty") == []


def test_cache_fingerprints_tell_fp32_int8_and_torch_apart(model_dir, exported):
    from nspzero.cache import scorer_fingerprint

    prints = {scorer_fingerprint(NSPScorer.from_pretrained(exported, dtype=d)) for d in ("float32", "int8")}
    prints.add(scorer_fingerprint(NSPScorer.from_pretrained(model_dir)))
    assert len(prints) == 3


def test_int8_file_keeps_the_pooler_and_head_fp32_and_quantises_the_encoder(exported):
    """ONNX Runtime renames each Gemm to <name>_MatMul before reading nodes_to_exclude: both names are
    excluded, so the pooler and NSP head stay float MatMuls while every encoder MatMul is quantised."""
    import onnx

    nodes = onnx.load(os.path.join(exported, "model.int8.onnx")).graph.node
    head = [n for n in nodes if "/pooler/" in n.name or "/cls/" in n.name]
    assert head and not [n.name for n in head if "Integer" in n.op_type or "Quantize" in n.op_type]
    assert {n.op_type for n in head} >= {"MatMul"}
    integer = [n.name for n in nodes if n.op_type == "MatMulInteger"]  # Q, K, V, output, two feed-forward
    assert len(integer) == 2 * 6 and not [name for name in integer if "/pooler/" in name or "/cls/" in name]


def test_fp32_node_names_lists_each_gemm_under_both_names():
    from types import SimpleNamespace

    from nspzero.onnx_export import fp32_node_names

    graph = SimpleNamespace(node=[SimpleNamespace(name="/model/cls/seq_relationship/Gemm", op_type="Gemm"),
                                  SimpleNamespace(name="/model/bert/pooler/dense/MatMul", op_type="MatMul"),
                                  SimpleNamespace(name="/model/bert/encoder/layer.0/MatMul", op_type="MatMul")])
    assert fp32_node_names(graph) == ["/model/cls/seq_relationship/Gemm", "/model/cls/seq_relationship/Gemm_MatMul",
                                      "/model/bert/pooler/dense/MatMul"]


def test_int8_folder_never_builds_the_fp32_session(exported, monkeypatch):
    """Building model.onnx's session first and then the int8 one held the fp32 weights for nothing."""
    import onnxruntime

    built = []
    real = onnxruntime.InferenceSession

    def recording(path, *args, **kwargs):
        built.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", recording)
    scorer = NSPScorer.from_pretrained(exported, max_length=64, dtype="int8")
    assert built == ["model.int8.onnx"]
    assert np.isfinite(scorer.score(PAIRS[:3])).all() and built == ["model.int8.onnx"]


# ---- every format gets the same load checks; the cache sees every file the model reads --------------
def _without(folder, token=None, extra=0):
    """The folder's vocab.txt without `token`, or with `extra` tokens more, read from vocab.txt alone."""
    vocab = folder / "vocab.txt"
    lines = vocab.read_text(encoding="utf-8").splitlines()
    lines = [t for t in lines if t != token] + [f"extra{i}" for i in range(extra)]
    vocab.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("tokenizer.json",):
        if (folder / name).exists():
            os.remove(folder / name)


@pytest.mark.parametrize("fmt", ["onnx", "torch"])
def test_a_vocab_without_sep_or_larger_than_the_embeddings_is_refused_at_load(model_dir, exported, tmp_path, fmt):
    import shutil

    source = exported if fmt == "onnx" else model_dir
    no_sep, too_big = tmp_path / "no-sep", tmp_path / "too-big"
    shutil.copytree(source, no_sep)
    shutil.copytree(source, too_big)
    _without(no_sep, token="[SEP]")
    _without(too_big, extra=5)
    with pytest.raises(ModelError, match=r"has no (\[CLS\]/)?\[SEP\]"):
        NSPScorer.from_pretrained(str(no_sep))
    with pytest.raises(ModelError, match=r"has token ids up to \d+ but the model has \d+ embeddings"):
        NSPScorer.from_pretrained(str(too_big))


def test_the_cache_fingerprint_covers_an_onnx_external_data_file(exported, tmp_path):
    import shutil

    import onnx

    from nspzero.cache import scorer_fingerprint

    folder = tmp_path / "external"
    shutil.copytree(exported, folder)
    proto = onnx.load(str(folder / "model.onnx"))
    onnx.save_model(proto, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    scorer = NSPScorer.from_pretrained(str(folder))
    assert str(folder / "weights.bin") in scorer.model.loaded_files()
    before = scorer_fingerprint(scorer)
    data = bytearray((folder / "weights.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "weights.bin").write_bytes(bytes(data))
    assert scorer_fingerprint(NSPScorer.from_pretrained(str(folder))) != before


def test_the_onnx_graph_is_parsed_once_per_version_of_the_file(exported, monkeypatch):
    """Fingerprinting (once per eval, per task) does not parse the graph again; a new export does."""
    import onnx

    parsed = []
    real_load = onnx.load
    monkeypatch.setattr(onnx, "load", lambda path, **kw: parsed.append(path) or real_load(path, **kw))
    model = NSPScorer.from_pretrained(exported).model
    assert model.loaded_files() == model.loaded_files() == [model.path] and len(parsed) <= 1
    count = len(parsed)
    before = os.stat(model.path)
    os.utime(model.path, ns=(1, 1))                      # another version of the file
    try:
        assert model.loaded_files() == [model.path] and len(parsed) == count + 1
    finally:
        os.utime(model.path, ns=(before.st_atime_ns, before.st_mtime_ns))


# ---- dtype int8 on ONNX Runtime without an export step (onnx_export.cached_export) ---------------------
def test_int8_runs_on_onnx_runtime_by_default_and_scores_like_the_exported_folder(model_dir, exported, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    auto = NSPScorer.from_pretrained(model_dir, max_length=64, batch_size=4, dtype="int8")
    assert auto.backend == "onnxruntime" and auto.engine.startswith("ONNX Runtime, int8")
    folder = auto.model.folder
    assert folder.startswith(str(tmp_path / "cache" / "onnx")) and os.path.isfile(auto.model.path)
    by_hand = NSPScorer.from_pretrained(exported, max_length=64, batch_size=4, dtype="int8")
    np.testing.assert_array_equal(auto.score(PAIRS), by_hand.score(PAIRS))  # the same file, the same scores
    assert NSPScorer.from_pretrained(model_dir, dtype="int8", backend="torch").backend == "torch"


def test_the_export_is_made_once_per_model_and_again_for_other_weights(model_dir, tmp_path, monkeypatch):
    import shutil

    import nspzero.onnx_export as onnx_export

    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    first = NSPScorer.from_pretrained(model_dir, dtype="int8").model.folder
    calls = []
    real = onnx_export.export_fp32
    monkeypatch.setattr(onnx_export, "export_fp32", lambda *a: calls.append(a) or real(*a))
    assert NSPScorer.from_pretrained(model_dir, dtype="int8").model.folder == first and not calls
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(other / "model.safetensors"))
    weights["bert.pooler.dense.bias"] = weights["bert.pooler.dense.bias"] + 0.5
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    changed = NSPScorer.from_pretrained(str(other), dtype="int8").model.folder
    assert changed != first and len(calls) == 1
    made = [n for n in os.listdir(tmp_path / "cache" / "onnx") if not n.endswith(".lock")]
    assert sorted(made) == sorted([os.path.basename(first), os.path.basename(changed)])


def test_a_callers_fp32_model_runs_on_onnx_runtime_when_asked(model_dir, tmp_path, monkeypatch):
    from nspzero.loading import load_nsp_model

    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    tokenizer, model = load_nsp_model(model_dir)
    ref = NSPScorer(tokenizer, model, max_length=64).score(PAIRS)
    ort = NSPScorer(tokenizer, model, max_length=64, backend="onnxruntime")
    assert ort.engine.startswith("ONNX Runtime, float32") and np.abs(ort.score(PAIRS) - ref).max() < 1e-5


def test_an_unwritable_cache_or_missing_onnxruntime_is_one_line(model_dir, tmp_path, monkeypatch, nspzero_caplog):
    """Asked for, ONNX Runtime that cannot run is an error; by default (int8, backend auto) torch's int8 runs, said once."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(UsageError, match="cannot write the ONNX cache .*NSPZERO_CACHE_DIR.*NSPZERO_BACKEND=torch"):
        NSPScorer.from_pretrained(model_dir, dtype="int8", backend="onnxruntime")
    assert NSPScorer.from_pretrained(model_dir, dtype="int8").backend == "torch"
    said = [r.getMessage() for r in nspzero_caplog.records if "ONNX export" in r.getMessage()]
    assert len(said) == 1 and "running torch's kernels" in said[0] and "\n" not in said[0]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert NSPScorer.from_pretrained(model_dir, dtype="int8").backend == "torch"  # auto: torch's int8
    with pytest.raises(UsageError, match="backend onnxruntime needs onnxruntime and onnx .*'onnx' extra"):
        NSPScorer.from_pretrained(model_dir, backend="onnxruntime")
    with pytest.raises(UsageError, match="backend onnxruntime runs float32 or int8 on the CPU, not bfloat16"):
        NSPScorer.from_pretrained(model_dir, dtype="bfloat16", backend="onnxruntime")


def test_a_failing_export_falls_back_to_torch_unless_asked_for(model_dir, tmp_path, monkeypatch, nspzero_caplog):
    import nspzero.onnx_export as onnx_export

    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))

    def broken(*args):
        raise RuntimeError("Exporting the operator 'aten::magic' to ONNX opset version 17 is not supported.")
    monkeypatch.setattr(onnx_export, "export_fp32", broken)
    scorer = NSPScorer.from_pretrained(model_dir, dtype="int8")
    assert scorer.backend == "torch" and scorer.score(PAIRS[:2]).shape == (2,)
    assert any("aten::magic" in r.getMessage() for r in nspzero_caplog.records)
    with pytest.raises(Exception, match="aten::magic"):
        NSPScorer.from_pretrained(model_dir, dtype="int8", backend="onnxruntime")
    assert not [n for n in os.listdir(tmp_path / "cache" / "onnx") if not n.endswith(".lock")]  # nothing half-made


def test_a_damaged_cached_export_is_made_again(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    first = NSPScorer.from_pretrained(model_dir, dtype="int8")
    expected = first.score(PAIRS)
    with open(first.model.path, "r+b") as handle:
        handle.truncate(100)
    again = NSPScorer.from_pretrained(model_dir, dtype="int8")
    assert again.model.folder == first.model.folder and again.backend == "onnxruntime"
    np.testing.assert_array_equal(again.score(PAIRS), expected)


@pytest.mark.parametrize("alter", ["swap", "weights", "manifest"])
def test_cached_export_altered_but_still_loading_is_exported_again(model_dir, tmp_path, monkeypatch, nspzero_caplog,
                                                                   alter):
    """A cached file changed after it was written is caught by its recorded digest, even when ONNX Runtime
    still loads it (fp32 graph in the int8 file's place, a weight's bytes changed, the manifest gone):
    exported again, with one warning, and scored as the intact export."""
    import onnx
    from onnx import numpy_helper

    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    first = NSPScorer.from_pretrained(model_dir, dtype="int8")
    expected = first.score(PAIRS)
    folder = first.model.folder
    if alter == "swap":
        import shutil

        shutil.copyfile(os.path.join(folder, "model.onnx"), first.model.path)
    elif alter == "weights":
        proto = onnx.load(first.model.path)
        bias = next(t for t in proto.graph.initializer if t.name.endswith("bias") and t.data_type == 1)
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 0.5, bias.name))
        onnx.save(proto, first.model.path)
    else:
        os.remove(os.path.join(folder, "digests.json"))
    if alter != "manifest":
        from nspzero.onnx_model import OnnxNSPModel

        still = OnnxNSPModel(folder, first.model.config, variant="int8")
        altered_scores = NSPScorer(first.tokenizer, still, dtype="int8").score(PAIRS)  # it still loads ...
        assert np.abs(altered_scores - expected).max() > 1e-6  # ... and scores otherwise
    nspzero_caplog.clear()
    again = NSPScorer.from_pretrained(model_dir, dtype="int8")
    said = [r.getMessage() for r in nspzero_caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "was altered since it was written" in said[0]
    assert again.model.folder == folder and again.backend == "onnxruntime"
    np.testing.assert_array_equal(again.score(PAIRS), expected)
    nspzero_caplog.clear()
    NSPScorer.from_pretrained(model_dir, dtype="int8")  # intact now: no export, no warning
    assert not [r for r in nspzero_caplog.records if r.levelname == "WARNING"]


def test_a_model_changed_in_memory_or_configured_otherwise_is_exported_anew(model_dir, tmp_path, monkeypatch):
    """A model passed in is keyed by its tensors and config, not by the files it was loaded from."""
    import torch

    from nspzero.loading import load_nsp_model

    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    tokenizer, model = load_nsp_model(model_dir)
    before = NSPScorer(tokenizer, model, dtype="int8")
    with torch.no_grad():
        model.cls.seq_relationship.weight.mul_(-1.5)
    after = NSPScorer(tokenizer, model, dtype="int8")
    assert after.model.folder != before.model.folder
    assert np.abs(after.score(PAIRS) - before.score(PAIRS)).max() > 1e-3
    model.config.layer_norm_eps = 1e-3
    assert NSPScorer(tokenizer, model, dtype="int8").model.folder != after.model.folder


def test_a_model_too_large_for_one_onnx_file_keeps_torch_by_default(model_dir, tmp_path, monkeypatch):
    import nspzero.scorer as scorer_module

    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(scorer_module, "ONNX_FILE_LIMIT", 1000)  # the tiny model "exceeds" it
    assert NSPScorer.from_pretrained(model_dir, dtype="int8").backend == "torch"
    with pytest.raises(UsageError, match="at most 2 GB of fp32 weights"):
        NSPScorer.from_pretrained(model_dir, dtype="int8", backend="onnxruntime")
    assert not (tmp_path / "cache" / "onnx").exists()


def test_a_bert_is_traced_through_the_forward_whose_last_layer_reads_cls_only(model_dir, tmp_path, monkeypatch):
    """The export's graph is unpadded.logits(keep_padding=True): the last layer on [CLS] alone (what
    makes ONNX Runtime's int8 ~7% faster); test_exported_fp32_scores_equal_torch holds it exact."""
    from nspzero import onnx_export, unpadded
    from nspzero.loading import load_nsp_model

    seen = []
    real = unpadded.logits
    monkeypatch.setattr(unpadded, "logits", lambda *a, **k: seen.append(k.get("keep_padding")) or real(*a, **k))
    _, model = load_nsp_model(model_dir)
    onnx_export.export_fp32(model.eval(), str(tmp_path / "model.onnx"))
    assert seen and all(seen)


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    """Class: cache locations from the environment. The XDG spec says a relative path is invalid; the
    cache must not follow the current folder."""
    from nspzero.digests import memo_dir

    monkeypatch.delenv("NSPZERO_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for relative in ("cache", "./cache", "../x"):
        monkeypatch.setenv("XDG_CACHE_HOME", relative)
        assert memo_dir() == tmp_path / "home" / ".cache" / "nspzero"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert memo_dir() == tmp_path / "xdg" / "nspzero"


def test_a_full_disk_during_an_export_names_the_full_disk(model_dir, tmp_path, monkeypatch, nspzero_caplog):
    """Class: a writer that fails on a full disk with its own words (protobuf's "Wire format was corrupt"
    when it reads back a truncated file). Before the export (too little room) and during it, the message
    names the disk; the default falls back to torch with that one warning; no temp folder or lock is left."""
    import shutil as shutil_module

    import nspzero.folders as folders
    import nspzero.onnx_export as onnx_export

    cache = tmp_path / "cache"
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(cache))
    real_usage = shutil_module.disk_usage
    free = {"bytes": 1 << 40}
    monkeypatch.setattr(folders.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=free["bytes"]))
    free["bytes"] = 1000  # too little room for the export: refused before it starts
    with pytest.raises(UsageError, match="No space left on device .*NSPZERO_CACHE_DIR"):
        NSPScorer.from_pretrained(model_dir, dtype="int8", backend="onnxruntime")

    def fills_the_disk(model, path):
        free["bytes"] = 4096
        raise RuntimeError("Error parsing message with type 'onnx.ModelProto': Wire format was corrupt")
    free["bytes"] = 1 << 40
    monkeypatch.setattr(onnx_export, "export_fp32", fills_the_disk)
    with pytest.raises(Exception, match="No space left on device") as info:
        NSPScorer.from_pretrained(model_dir, dtype="int8", backend="onnxruntime")
    assert "Wire format" not in str(info.value)
    free["bytes"] = 1 << 40
    assert NSPScorer.from_pretrained(model_dir, dtype="int8").backend == "torch"
    said = [r.getMessage() for r in nspzero_caplog.records if "running torch's kernels" in r.getMessage()]
    assert len(said) == 1 and "No space left on device" in said[0]
    assert os.listdir(cache / "onnx") == []  # no half-made folder, no lock file


def test_lock_files_are_removed_after_an_export(model_dir, tmp_path, monkeypatch):
    """Class: files the cache makes for its own bookkeeping. A finished export leaves its folder only;
    an older version's leftover lock is removed when its folder is found."""
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "cache"))
    folder = NSPScorer.from_pretrained(model_dir, dtype="int8").model.folder
    assert os.listdir(tmp_path / "cache" / "onnx") == [os.path.basename(folder)]
    (tmp_path / "cache" / "onnx" / (os.path.basename(folder) + ".lock")).write_text("")
    assert NSPScorer.from_pretrained(model_dir, dtype="int8").model.folder == folder
    assert os.listdir(tmp_path / "cache" / "onnx") == [os.path.basename(folder)]


# ---- int8 scores never depend on the batch (issue 29, item 3) ----------------------------------------
def test_int8_batch_invariance_on_onnx_runtime(decisive_model_dir, tmp_path):
    """Per-tensor DynamicQuantizeLinear moved a pair's P by 1.5e-2 on this model with its batch-mates; with
    per-token scales a pair scores the same alone and in any batch (within fp32 reordering), so a server's
    answer does not depend on other clients' requests, and it stays an approximation of fp32."""
    import onnx

    folder = str(export_onnx(decisive_model_dir, tmp_path / "out"))
    ops = {n.op_type for n in onnx.load(os.path.join(folder, "model.int8.onnx")).graph.node}
    assert "DynamicQuantizeLinear" not in ops and "MatMulInteger" in ops
    scorer = NSPScorer.from_pretrained(folder, max_length=64, batch_size=16, dtype="int8")
    together = scorer.score(PAIRS)
    alone = np.array([scorer.score([p])[0] for p in PAIRS])
    assert np.abs(together - alone).max() < 1e-6
    ref = NSPScorer.from_pretrained(decisive_model_dir, max_length=64).score(PAIRS)
    assert np.abs(together - ref).max() < 3e-2  # measured 1.1e-2 (the per-tensor file: 1.7e-2)
