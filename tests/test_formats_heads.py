"""Every sentence-relation head nspzero reads (heads.HEADS): tiny random BERT, MegatronBERT (pre-LN),
ERNIE, ALBERT (sentence order) and MobileBERT, each scored by nspzero and by the architecture's own
transformers pre-training class one pair at a time (≤ 1e-5), through prefix/suffix placement,
truncation, windows, int8, bf16 and the ONNX export; and the one refusal of every other model."""
from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import VOCAB, one_line, run_cli

from nspzero import NSPClassifier, NSPScorer, Pair
from nspzero.errors import ModelError
from nspzero.formats.heads import HEADS, IN_ORDER_INDEX

ARCHS = ["bert", "megatron-bert", "ernie", "albert", "mobilebert"]
TEMPLATE = "这是一则{label}新闻"
LABELS = ["体育", "财经", "科技"]
TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机，电脑游戏玩家也很多", "这次买的东西很差", "hello world good movie"]
SENTENCE = "今天比赛球队赢了。"  # 9 tokens in the test vocab


def _config(arch: str):
    import transformers as T

    common = dict(vocab_size=len(VOCAB), num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=128,
                  initializer_range=0.2)  # wide weights: scores spread out, so a wrong head or index shows
    if arch == "mobilebert":
        return T.MobileBertConfig(hidden_size=32, embedding_size=16, intra_bottleneck_size=16, true_hidden_size=16,
                                  intermediate_size=32, num_feedforward_networks=2, **common)
    cls = {"bert": T.BertConfig, "megatron-bert": T.MegatronBertConfig, "ernie": T.ErnieConfig,
           "albert": T.AlbertConfig}[arch]
    extra = {"embedding_size": 16} if arch == "albert" else {}  # ALBERT's factorised embeddings
    return cls(hidden_size=32, intermediate_size=64, **extra, **common)


def pretraining_class(arch: str):
    """The class such a checkpoint is saved with: its sentence-relation logits are the reference."""
    import transformers as T

    return {"bert": T.BertForPreTraining, "megatron-bert": T.MegatronBertForPreTraining,
            "ernie": T.ErnieForPreTraining, "albert": T.AlbertForPreTraining,
            "mobilebert": T.MobileBertForPreTraining}[arch]


def build(arch: str, folder: str, model_class=None) -> str:
    """Save a tiny random `arch` (its pre-training class unless `model_class`) with the test vocab."""
    from transformers import BertTokenizer

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(VOCAB) + "\n")
    torch.manual_seed(7)
    (model_class or pretraining_class(arch))(_config(arch)).save_pretrained(folder)
    BertTokenizer.from_pretrained(folder).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def arch_dir(arch, tmp_path_factory):
    return build(arch, str(tmp_path_factory.mktemp(arch)))


@pytest.fixture(scope="module")
def arch_ref(arch, arch_dir):
    """Unbatched reference: transformers' tokenizer pair encoding + the pre-training class's own logits."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(arch_dir)
    model = pretraining_class(arch).from_pretrained(arch_dir).eval()

    def score(a: str, b: str, max_length: int = 128) -> float:
        enc = tokenizer(a, b, return_tensors="pt", truncation="longest_first", max_length=max_length)
        with torch.no_grad():
            out = model(**enc)
        logits = out.sop_logits if arch == "albert" else out.seq_relationship_logits
        return float(torch.softmax(logits, -1)[0, IN_ORDER_INDEX])

    return score


@pytest.fixture(scope="module")
def arch_clf(arch_dir):
    return NSPClassifier.from_pretrained(arch_dir, device="cpu", max_length=64, batch_size=4)


def _pairs() -> list[Pair]:
    return [Pair(TEMPLATE.format(label=w), t, prompt="first") for t in TEXTS for w in LABELS] + \
        [Pair(t, TEMPLATE.format(label=w), prompt="second") for t in TEXTS[:2] for w in LABELS] + \
        [Pair("今天比赛", "球队赢了"), Pair("改朝换代", "他们今天比赛球队赢了", anchor=2)]


@pytest.fixture(scope="module")
def fp32_scores(arch_dir):
    return NSPScorer.from_pretrained(arch_dir, device="cpu", max_length=64).score(_pairs())


# ---- which logit means "in order" ------------------------------------------------------------------

def test_in_order_index_is_the_label_transformers_documents():
    """transformers' docs of each pre-training class's label: 0 = "B is a continuation of A" (NSP) or
    "original order (sequence A, then sequence B)" (SOP); nspzero reads softmax(logits)[IN_ORDER_INDEX]."""
    for model_type, head in HEADS.items():
        module = Path(inspect.getfile(pretraining_class(model_type))).read_text(encoding="utf-8")
        said = {"NSP": r"`?(\d)`? indicates sequence B is a continuation of sequence A",
                "SOP": r"`(\d)` indicates original order \(sequence A, then\s+sequence B\)"}[head.kind]
        found = {int(m) for m in re.findall(said, module)}
        assert found == {head.in_order_index} == {IN_ORDER_INDEX}, (model_type, found)


def test_the_albert_head_is_the_pretraining_sop_head(tmp_path):
    """Logit 0 of the loaded model is AlbertForPreTraining's sop_logits[0], weights shared by name."""
    from nspzero.loading import load_nsp_model

    folder = build("albert", str(tmp_path / "albert"))
    tokenizer, model = load_nsp_model(folder)
    full = pretraining_class("albert").from_pretrained(folder).eval()
    enc = tokenizer("今天比赛", "球队赢了", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, full(**enc).sop_logits)
    assert type(model).__name__ == "AlbertForSentenceOrder"
    assert not any(n.startswith("predictions") for n, _ in model.named_parameters())  # no masked-LM head


# ---- parity with the architecture's own class --------------------------------------------------------

def test_prefix_and_suffix_scores_equal_the_own_class(arch_clf, arch_ref):
    for placement in ("prefix", "suffix"):
        results = arch_clf.classify(TEXTS, LABELS, template=TEMPLATE, placement=placement)
        for text, result in zip(TEXTS, results):
            for label in LABELS:
                prompt = TEMPLATE.format(label=label)
                want = arch_ref(prompt, text) if placement == "prefix" else arch_ref(text, prompt)
                assert abs(result.scores[label] - want) <= 1e-5, (placement, text, label)
    spread = [s for r in arch_clf.classify(TEXTS, LABELS, template=TEMPLATE) for s in r.scores.values()]
    assert max(spread) - min(spread) > 0.02  # the scores differ: the comparison can fail


def test_truncation_equals_the_own_class(arch_dir, arch_ref):
    scorer = NSPScorer.from_pretrained(arch_dir, device="cpu", max_length=24)
    prompt, text = "这是一则体育新闻", "今天比赛球队赢了市场上涨公司发布手机电脑游戏"
    got = scorer.score([Pair(prompt, text, prompt="first"), Pair(text, prompt, prompt="second")])
    assert abs(got[0] - arch_ref(prompt, text[:13])) <= 1e-5  # the prompt is kept, the text cut
    assert abs(got[1] - arch_ref(text[:13], prompt)) <= 1e-5
    # two data sides: the paper's rule cuts the longer side a token at a time (second side on a tie): 7 + 6
    short = NSPScorer.from_pretrained(arch_dir, device="cpu", max_length=16)
    assert abs(short.score([Pair(prompt, text)])[0] - arch_ref(prompt[:7], text[:6])) <= 1e-5


def test_windows_equal_the_own_class_per_window(arch_clf, arch_ref):
    result = arch_clf.classify(SENTENCE * 12, LABELS[:2], template=TEMPLATE, long_text="chunk", aggregate="max",
                               overlap=0)
    for label in LABELS[:2]:
        windows = [SENTENCE * 5, SENTENCE * 5, SENTENCE * 2]  # 53 text tokens per window at max_length 64
        want = max(arch_ref(TEMPLATE.format(label=label), w) for w in windows)
        assert abs(result.scores[label] - want) <= 1e-5


# ---- precisions and the ONNX export ------------------------------------------------------------------

@pytest.mark.parametrize("dtype, bound", [("int8", 3e-2), ("bfloat16", 3e-2)])
def test_reduced_precision_stays_near_fp32(arch_dir, fp32_scores, dtype, bound):
    """Bounds as for tiny BERT with wide weights (tests/test_quantize.py): the head stays fp32 under int8."""
    scorer = NSPScorer.from_pretrained(arch_dir, device="cpu", max_length=64, dtype=dtype, backend="torch")
    got = scorer.score(_pairs())
    assert np.isfinite(got).all() and np.abs(got - fp32_scores).max() < bound
    if dtype == "int8":
        kept = [n for n, m in scorer.model.named_modules() if type(m) is torch.nn.Linear]
        head = HEADS[scorer.model.config.model_type].weights.rstrip(".")
        assert any(n.startswith(head) for n in kept), kept


def test_onnx_export_scores_like_torch(arch_dir, fp32_scores, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from nspzero.onnx_export import export_onnx

    out = export_onnx(arch_dir, tmp_path / "onnx")
    assert json.loads((out / "config.json").read_text())["model_type"] == \
        json.loads(open(os.path.join(arch_dir, "config.json")).read())["model_type"]
    onnx = NSPScorer.from_pretrained(str(out), max_length=64)
    assert np.abs(onnx.score(_pairs()) - fp32_scores).max() < 1e-5
    int8 = NSPScorer.from_pretrained(str(out), max_length=64, dtype="int8")
    assert np.abs(int8.score(_pairs()) - fp32_scores).max() < 3e-2


# ---- front doors ------------------------------------------------------------------------------------

def test_every_front_door_takes_an_albert_folder(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from fewclue_fixture import write_fewclue
    from nspzero.serve import create_app

    folder = build("albert", str(tmp_path / "albert"))
    local = NSPClassifier.from_pretrained(folder, device="cpu", max_length=64)
    want = local.classify("今天比赛球队赢了", ["体育", "财经"])
    code, out, err = run_cli(["classify", "-m", folder, "--max-length", "64", "-l", "体育,财经", "今天比赛球队赢了"], capsys)
    assert code == 0 and want.label in out, err
    with TestClient(create_app(local)) as client:
        r = client.post("/classify", json={"texts": ["今天比赛球队赢了"], "labels": ["体育", "财经"]})
    assert r.status_code == 200 and abs(r.json()["results"][0]["scores"][want.label] - want.scores[want.label]) < 1e-6
    data = write_fewclue(tmp_path / "data", n=4)
    code, _, err = run_cli(["eval", "-m", folder, "-d", str(data), "--tasks", "eprstmt", "-o", str(tmp_path / "o"),
                            "--max-length", "32"], capsys)
    assert code == 0 and (tmp_path / "o" / "results.json").is_file(), err


# ---- the one refusal -------------------------------------------------------------------------------

def test_albert_without_its_sop_head_is_refused(tmp_path):
    from transformers import AlbertForMaskedLM

    folder = build("albert", str(tmp_path / "mlm"), model_class=AlbertForMaskedLM)
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(folder)
    one_line(exc, "no trained weights for its sentence-order-prediction head (sop_classifier.classifier.bias",
             "pre-trained with SOP")


def test_megatron_without_its_nsp_head_is_refused(tmp_path):
    from transformers import MegatronBertForMaskedLM

    folder = build("megatron-bert", str(tmp_path / "mlm"), model_class=MegatronBertForMaskedLM)
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(folder)
    one_line(exc, "its next-sentence-prediction head (cls.seq_relationship.bias")


def test_fnet_is_refused_saying_why(tmp_path):
    from transformers import FNetConfig

    folder = tmp_path / "fnet"
    FNetConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1).save_pretrained(folder)
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(str(folder))
    one_line(exc, "'fnet' model, which nspzero cannot score", "no attention mask")


def test_a_model_without_any_sentence_head_is_refused(tmp_path):
    from transformers import RobertaConfig

    folder = tmp_path / "roberta"
    RobertaConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=16).save_pretrained(folder)
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(str(folder))
    one_line(exc, "'roberta' model, which has no next-sentence-prediction head (nor a sentence-order one",
             "albert", "docs/models.md")


# ---- Google TF1 ALBERT bundles (tests/fixtures/tf_albert, saved and run by real TensorFlow) ---------------

TF_ALBERT = os.path.join(os.path.dirname(__file__), "fixtures", "tf_albert")


def _tf_inputs():
    expected = np.load(os.path.join(TF_ALBERT, "expected.npz"))
    batch = {k: torch.tensor(expected[k]) for k in ("input_ids", "token_type_ids", "attention_mask")}
    return batch, expected["sop_logits"]


def test_albert_variable_names_map_to_the_sop_model():
    from nspzero.formats.checkpoints import albert_name

    layer = "bert/encoder/transformer/group_0/inner_group_0"
    body = "albert.encoder.albert_layer_groups.0.albert_layers.0"
    assert albert_name("bert/embeddings/word_embeddings") == ("albert.embeddings.word_embeddings.weight", False)
    assert albert_name("bert/encoder/embedding_hidden_mapping_in/kernel") == \
        ("albert.encoder.embedding_hidden_mapping_in.weight", True)
    assert albert_name(f"{layer}/attention_1/self/query/kernel") == (f"{body}.attention.query.weight", True)
    assert albert_name(f"{layer}/attention_1/output/dense/bias") == (f"{body}.attention.dense.bias", False)
    assert albert_name(f"{layer}/LayerNorm/gamma") == (f"{body}.attention.LayerNorm.weight", False)
    assert albert_name(f"{layer}/ffn_1/intermediate/output/dense/kernel") == (f"{body}.ffn_output.weight", True)
    assert albert_name(f"{layer}/LayerNorm_1/beta") == (f"{body}.full_layer_layer_norm.bias", False)
    assert albert_name("module/bert/pooler/dense/kernel") == ("albert.pooler.weight", True)  # a TF-Hub export
    assert albert_name("cls/seq_relationship/output_weights") == ("sop_classifier.classifier.weight", False)
    for skipped in ("cls/predictions/output_bias", "global_step", "bert/pooler/dense/kernel/adam_m"):
        assert albert_name(skipped)[0] is None


def test_a_google_albert_bundle_scores_like_tensorflow():
    """The SOP logits of nspzero's in-memory conversion equal those TensorFlow computed (shared layer ×3,
    factorised embeddings, ALBERT's tanh gelu)."""
    from nspzero.loading import load_nsp_model

    tokenizer, model = load_nsp_model(TF_ALBERT)
    batch, want = _tf_inputs()
    with torch.no_grad():
        got = model(**batch).logits.numpy()
    assert np.abs(got - want).max() < 1e-5
    assert model.config.num_hidden_layers == 3 and model.config.hidden_act == "gelu_new"
    scorer = NSPScorer(tokenizer, model, device="cpu", max_length=32)
    p = scorer.score([Pair("这是一则体育新闻", "今天比赛"), Pair("比赛", "很好")])
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(want), -1)[:, IN_ORDER_INDEX].numpy(), atol=1e-6)


def test_convert_writes_an_albert_folder_transformers_loads(tmp_path, capsys):
    from transformers import AlbertForPreTraining

    out = tmp_path / "albert"
    code, _, err = run_cli(["convert", TF_ALBERT, str(out)], capsys)
    assert code == 0, err
    batch, want = _tf_inputs()
    with torch.no_grad():
        sop = AlbertForPreTraining.from_pretrained(str(out)).eval()(**batch).sop_logits.numpy()
    assert np.abs(sop - want).max() < 1e-5
    code, printed, err = run_cli(["classify", "-m", str(out), "--max-length", "32", "-l", "体育,财经", "今天比赛"], capsys)
    assert code == 0 and ("体育" in printed or "财经" in printed), err


def test_an_albert_bundle_without_its_config_or_head_is_refused(tmp_path):
    import shutil

    from checkpoint_writers import write_tf_bundle
    from nspzero.formats.tf_bundle import TFBundle

    bare = tmp_path / "no-config"
    shutil.copytree(TF_ALBERT, bare, ignore=shutil.ignore_patterns("albert_config.json"))
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(str(bare))
    one_line(exc, "num_hidden_layers must come from the checkpoint's albert_config.json")
    headless = tmp_path / "no-head"
    shutil.copytree(TF_ALBERT, headless, ignore=shutil.ignore_patterns("model.ckpt-best.*"))
    bundle = TFBundle(os.path.join(TF_ALBERT, "model.ckpt-best"))
    write_tf_bundle(str(headless / "model.ckpt-best"),
                    {n: bundle.read(n) for n in bundle.entries if n.startswith("bert/")})
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(str(headless))
    one_line(exc, "has no trained weights for its sentence-order-prediction head (sop_classifier.classifier.bias")


def test_a_missing_head_is_refused_in_the_same_words_from_every_format(headless_model_dir, tmp_path):
    """One rule, one sentence: a transformers folder without its NSP head is refused exactly as
    `heads.missing_head` words it for a converted TF1/UER checkpoint."""
    from nspzero.formats.heads import missing_head

    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(headless_model_dir)
    names = ["cls.seq_relationship.bias", "cls.seq_relationship.weight"]
    assert str(exc.value) == str(missing_head(HEADS["bert"], f"model {headless_model_dir!r}", names))


# ---- configs checked before anything is allocated, for every architecture (issue 29, items 1-2) -------
def _with_config(arch_dir: str, tmp_path, **changes) -> str:
    import shutil

    folder = tmp_path / "changed"
    shutil.copytree(arch_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    return str(folder)


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
def test_config_feature_transformers_cannot_run_is_refused(arch, arch_dir, tmp_path, kind):
    """transformers 5 computes absolute positions only: a relative-position checkpoint would be scored as
    another model (its distance embeddings dropped without a word)."""
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(_with_config(arch_dir, tmp_path, position_embedding_type=kind))
    one_line(exc, "config.json: position_embedding_type", kind, "absolute")
    NSPScorer.from_pretrained(_with_config(arch_dir, tmp_path / "abs", position_embedding_type="absolute"))


def test_config_field_that_sizes_a_tensor_must_match_the_weights(arch, arch_dir, tmp_path):
    """Every size a tensor fixes (vocab, hidden, embedding, feed-forward, token types, positions, layers or
    layer groups), one at a time off by one: refused naming the field, from the files' headers."""
    from nspzero.formats.configs import sizes_from_tensors
    from nspzero.loading import _safetensors_shapes

    sizes = sizes_from_tensors(_safetensors_shapes(arch_dir), arch)
    assert {"vocab_size", "type_vocab_size", "max_position_embeddings", "intermediate_size"} <= set(sizes)
    assert ("num_hidden_groups" if arch == "albert" else "num_hidden_layers") in sizes
    for i, (field, size) in enumerate(sorted(sizes.items())):
        with pytest.raises(ModelError) as exc:
            NSPScorer.from_pretrained(_with_config(arch_dir, tmp_path / str(i), **{field: size + 1}))
        one_line(exc, f"config.json: {field} is {size + 1} but the weights have {size}")


@pytest.mark.parametrize("changes, needle", [
    ({"type_vocab_size": 1}, "type_vocab_size should be greater than or equal to 2, got int 1"),
    ({"num_hidden_layers": 10_000_000}, "num_hidden_layers should be less than or equal to 1024"),
    ({"vocab_size": 3_000_000, "hidden_size": 60000, "intermediate_size": 200000},
     "would allocate about"),
    ({"intermediate_size": "64"}, "intermediate_size should be a valid integer, got str '64'"),
    ({"layer_norm_eps": float("nan")}, "layer_norm_eps should be a finite number"),
    ({"initializer_range": True}, "initializer_range should be a valid number, got bool True"),
])
def test_config_field_of_a_wrong_type_or_unbounded_size_is_refused_before_allocating(arch, arch_dir, tmp_path,
                                                                                     changes, needle):
    import time

    start = time.monotonic()
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(_with_config(arch_dir, tmp_path, **changes))
    one_line(exc, "config.json: ", needle)
    assert time.monotonic() - start < 30  # nothing the size asks for was allocated


@pytest.mark.parametrize("field", ["vocab_size", "embedding_size", "hidden_size", "intermediate_size",
                                   "type_vocab_size", "num_hidden_groups", "inner_group_num"])
def test_config_field_that_sizes_a_tensor_of_an_albert_bundle_must_match_it(tmp_path, field):
    """A Google ALBERT bundle's sizes come from its tensors; an albert_config.json that says otherwise is
    not this checkpoint's (as a BERT bundle's is refused)."""
    import shutil

    folder = tmp_path / "albert"
    shutil.copytree(TF_ALBERT, folder)
    config = json.loads((folder / "albert_config.json").read_text())
    given = config[field] * 2
    (folder / "albert_config.json").write_text(json.dumps({**config, field: given}))
    with pytest.raises(ModelError) as exc:
        NSPScorer.from_pretrained(str(folder))
    one_line(exc, f"{field} is {given} but the weights have {config[field]}")
