"""Task configs and the four task types: pairs per example, decisions, the registry, English tasks."""
import json
from pathlib import Path

import numpy as np
import pytest

from fewclue_fixture import VOCAB_DIR, write_fewclue
from nspzero import NSPClassifier
from nspzero.errors import DataError, UsageError
from nspzero.harness import EvalSettings, evaluate
from nspzero.prompt_sets import list_prompt_sets, load_prompt
from nspzero.scorer import NSPScorer, Pair
from nspzero.tasks.registry import FEWCLUE, load_config, load_task, resolve_task_list, task_names
from bad_input import Files, case, check_case


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_fewclue(tmp_path_factory.mktemp("fewclue")))


def test_all_nine_tasks_and_prompt_sets_are_shipped():
    assert set(FEWCLUE) <= set(task_names())
    assert set(FEWCLUE) <= set(list_prompt_sets())
    for name in FEWCLUE:
        assert load_config(name).reference is not None


def test_default_prompts_follow_method_md():
    tnews = load_prompt("tnews")
    assert tnews.templates == ("这是一则{label}新闻",)
    assert tnews.words["news_stock"] == ("股票",) and tnews.words["news_story"] == ("故事",)
    old = load_prompt("tnews:news-2021")
    assert old.words["news_stock"] == ("证券",) and old.words["news_story"] == ("民生",)
    assert load_prompt("eprstmt").templates == ("这次买的东西{label}",)
    assert load_prompt("eprstmt").words == {"Negative": ("很差",), "Positive": ("很好",)}
    assert len(load_prompt("iflytek").words) == 119 and load_prompt("iflytek").templates == ("这是一款{label}类软件",)
    assert len(load_prompt("csldcp").words) == 67 and load_prompt("csldcp").templates == ("这是一篇{label}类论文",)
    assert load_prompt("cluewsc:qizhong").second == "{text}其中{pronoun}是指"


def test_unknown_names_get_suggestions():
    with pytest.raises(UsageError, match="did you mean 'tnews'"):
        load_config("tnew")
    with pytest.raises(UsageError, match="did you mean 'iflytek'"):
        load_prompt("iflytec")
    with pytest.raises(UsageError, match="no variant"):
        load_prompt("tnews:nope")
    with pytest.raises(UsageError, match="did you mean 'ocnli'"):
        resolve_task_list("eprstmt,ocnl")


def test_classification_pairs_prompt_first(data_dir):
    task = load_task("eprstmt")
    ex = task.read(data_dir, "test_public", limit=2)
    assert [e.index for e in ex] == [0, 1]
    assert task.example_pairs(ex[0]) == [Pair("这次买的东西很差", ex[0].fields["text"], prompt="first"),
                                         Pair("这次买的东西很好", ex[0].fields["text"], prompt="first")]


def test_pair_tasks_build_the_method_md_pairs(data_dir):
    ocnli = load_task("ocnli")
    e = ocnli.read(data_dir, "test_public", 1)[0]
    assert ocnli.example_pairs(e) == [Pair(e.fields["sentence2"], e.fields["sentence1"])]
    csl = load_task("csl")
    e = csl.read(data_dir, "test_public", 1)[0]
    assert csl.example_pairs(e) == [Pair(e.fields["abst"], "比赛,手机")]
    wsc = load_task("cluewsc")
    e = wsc.read(data_dir, "test_public", 1)[0]
    assert wsc.example_pairs(e) == [Pair("老师", e.fields["text"] + "上文中他是指")]
    assert load_task("cluewsc", prompt=":qizhong").example_pairs(e) == [Pair("老师", e.fields["text"] + "其中他是指")]


def test_cloze_pairs_have_anchor_at_the_blank(data_dir):
    chid = load_task("chid")
    e = chid.read(data_dir, "test_public", 1)[0]
    pairs = chid.example_pairs(e)
    assert len(pairs) == 7
    assert pairs[0] == Pair("严阵以待", "今天比赛球队赢了", anchor=3)
    assert e.gold == "严阵以待"
    plain = load_task("chid", soft_positions=False).example_pairs(e)
    assert plain[0] == Pair("严阵以待", "今天比赛球队赢了")


def test_pair_decision_uses_dev_thresholds(data_dir):
    task = load_task("ocnli")
    test = task.read(data_dir, "test_public")
    dev_scores = [np.array([s]) for s in np.linspace(0.1, 0.9, 9)]
    test_scores = [np.array([s]) for s in np.linspace(0.0, 1.0, len(test))]
    decision = task.decide(test, test_scores, dev_scores)
    assert decision.extra["thresholds"] == pytest.approx([0.3, 0.6])  # 9 dev scores, g=3: sorted[2], sorted[5]
    assert decision.extra["label_order"] == ["contradiction", "neutral", "entailment"]
    assert decision.predictions[0] == "contradiction" and decision.predictions[-1] == "entailment"


def test_data_errors_name_file_and_line(tmp_path, data_dir):
    bad = tmp_path / "eprstmt"
    bad.mkdir()
    (bad / "test_public.json").write_text('{"sentence": "好", "label": "Positive"}\n{"sentence": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"test_public.json:2: no field 'label'"):
        load_task("eprstmt").read(str(tmp_path), "test_public")
    (bad / "test_public.json").write_text('{"sentence": "好", "label": "Neutral"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r":1: label 'Neutral' is not among the 2 labels"):
        load_task("eprstmt").read(str(tmp_path), "test_public")
    with pytest.raises(DataError, match=r"no split 'dev_x'.*have: test_public"):
        load_task("eprstmt").read(str(tmp_path), "dev_x")
    with pytest.raises(DataError, match="no folder"):
        load_task("tnews").read(str(tmp_path), "test_public")


# ---- English task configs, their data in JSONL or CSV with field overrides -----------------------
UNCASED = VOCAB_DIR / "bert-base-uncased-vocab-subset.txt"   # every piece these tests' English needs


@pytest.fixture(scope="module")
def english_model_dir(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForPreTraining, BertTokenizer

    path = tmp_path_factory.mktemp("tiny-bert-uncased")
    (path / "vocab.txt").write_bytes(UNCASED.read_bytes())
    tokenizer = BertTokenizer.from_pretrained(str(path), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    BertForPreTraining(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    assert tokenizer.convert_ids_to_tokens(tokenizer("A GREAT Movie")["input_ids"]) == \
        ["[CLS]", "a", "great", "movie", "[SEP]"]  # real ids, lower-cased
    return str(path)


def write_rows(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        import csv

        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


REVIEWS = [("a great movie , loved it", "1"), ("terrible acting and a bad plot", "0"), ("good work", "1"),
           ("the worst film of the year", "0"), ("it is a piece of great work", "1"), ("bad", "0")]


def test_english_task_from_jsonl_and_csv_with_field_overrides(english_model_dir, tmp_path):
    write_rows(tmp_path / "data" / "sst2" / "test.jsonl", [{"text": t, "label": l} for t, l in REVIEWS])
    write_rows(tmp_path / "data" / "mr" / "test.csv", [{"review": t, "y": l} for t, l in REVIEWS])
    scorer = NSPScorer.from_pretrained(english_model_dir, max_length=64)
    results = evaluate(scorer, EvalSettings(str(tmp_path / "data"), ["sst2"]), tmp_path / "out")
    rows = [json.loads(l) for l in (tmp_path / "out" / "sst2.predictions.jsonl").read_text().splitlines()]
    api = NSPClassifier(scorer).classify([t for t, _ in REVIEWS], {"0": "terrible", "1": "great"},
                                         template="A {label} piece of work")
    assert [r["prediction"] for r in rows] == [a.label for a in api]
    assert results["tasks"]["sst2"]["accuracy"] == pytest.approx(np.mean([r["gold"] == r["prediction"] for r in rows]))
    mr = evaluate(scorer, EvalSettings(str(tmp_path / "data"), ["mr"], fields={"text": "review", "label": "y"}),
                  tmp_path / "out-mr")
    assert mr["tasks"]["mr"]["accuracy"] == results["tasks"]["sst2"]["accuracy"]  # same texts, same prompt


@pytest.mark.parametrize("task, key", [("tnews", "label_desc"), ("iflytek", "label_des"), ("csldcp", "label")])
def test_prompt_labels_are_fewclue_labels_json(task, key):
    """The shipped prompt sets name exactly FewCLUE's own label list (its labels.json), in its order."""
    from fewclue_fixture import FEWCLUE

    official = [entry[key] for entry in json.loads((FEWCLUE / task / "labels.json").read_text(encoding="utf-8"))]
    assert list(load_prompt(task).labels) == official


def _chid_read(e: Files, answer: str):
    e.file("data/chid/test_public.json",
           '{"content": "今天#idiom#比赛", "candidates": ["严阵以待", "改朝换代"], "answer": ' + answer + '}\n')
    return load_task("chid").read(str(e.tmp / "data"), "test_public")


BAD_INPUT = [
    case("chid-answer-bool", lambda e: _chid_read(e, "true"), DataError, "answer True is not an index"),
    case("chid-answer-string", lambda e: _chid_read(e, '"1"'), DataError, "answer '1' is not an index"),
]


@pytest.mark.parametrize("fn, exc, message", BAD_INPUT)
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, fn, exc, message):
    """Task data: a ChID answer that is not an index names the value."""
    check_case(fn, Files(tmp_path, monkeypatch), exc, message)
