"""English task configs, entity linking, prompt ensembles and calibration rows (beyond the paper's table)."""
import json
from pathlib import Path

import numpy as np
import pytest

from nspzero import NSPClassifier
from nspzero.calibration import content_free, prior
from nspzero.errors import UsageError
from nspzero.harness import EvalSettings, evaluate
from nspzero.mapping import combine
from nspzero.prompt_sets import load_prompt, prompt_family
from nspzero.scorer import NSPScorer

UNCASED = Path(__file__).resolve().parents[2] / "shared" / "data" / "vocab" / "bert-base-uncased-vocab.txt"


@pytest.fixture(scope="module")
def english_model_dir(tmp_path_factory):
    if not UNCASED.is_file():
        pytest.skip("../shared/data/vocab/bert-base-uncased-vocab.txt not present")
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


def test_english_prompts_follow_method_md():
    assert load_prompt("sst2").templates == ("A {label} piece of work",)
    assert load_prompt("sst2").words == {"0": ("terrible",), "1": ("great",)}
    assert load_prompt("subj").templates == ("A {label} comment",)
    assert load_prompt("mpqa").templates == ("It is {label}",)
    assert load_prompt("agnews").words["3"] == ("technology",) and load_prompt("agnews").templates == ("A {label} news :",)
    assert len(load_prompt("yahoo").words) == 10 and load_prompt("yahoo").templates == ("{label} question :",)
    for name in ("trec", "dbpedia", "imdb", "amazon", "cr", "mr"):
        assert load_prompt(name).words


def test_link_picks_the_best_description(clf):
    result = clf.link("我买的手机", {"a": "手机", "b": "电脑游戏", "c": "今天比赛"})
    expected = clf.score_pairs(["我买的手机"] * 3, ["手机", "电脑游戏", "今天比赛"])
    assert result.scores == pytest.approx(dict(zip("abc", expected)), abs=1e-6)
    assert result.entity == "abc"[int(np.argmax(expected))]
    many = clf.link(["我买的手机", "今天比赛"], [[("x", "手机"), ("y", "比赛")], [{"id": "z", "description": "球队"}]])
    assert [m.entity for m in many][1] == "z"
    with pytest.raises(UsageError, match="given twice"):
        clf.link("x", [("a", "手机"), ("a", "电脑")])
    with pytest.raises(UsageError, match="empty description"):
        clf.link("x", {"a": ""})


def test_link_cli_on_jsonl(model_dir, tmp_path, capsys):
    from nspzero.cli import main

    src = tmp_path / "mentions.jsonl"
    src.write_text(json.dumps({"text": "我买的手机", "candidates": [{"id": "Q1", "description": "手机"},
                                                                     {"id": "Q2", "description": "比赛"}]},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        main(["link", "-m", model_dir, "-i", str(src)])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    row = json.loads(capsys.readouterr().out)
    assert row["entity"] in ("Q1", "Q2") and set(row["scores"]) == {"Q1", "Q2"}


def test_combine_rules_and_classify_ensembles(clf):
    assert combine([0.25, 1.0], "mean") == pytest.approx(0.625)
    assert combine([0.25, 1.0], "logmean") == pytest.approx(0.5)
    with pytest.raises(UsageError, match="combine"):
        combine([0.5], "max")
    templates = ["{label}", "这是一则{label}新闻"]
    r = clf.classify("今天比赛", ["体育", "财经"], template=templates, combine="logmean")
    p = clf.score_pairs(["体育", "这是一则体育新闻"], ["今天比赛"] * 2)
    assert r.scores["体育"] == pytest.approx(float(np.sqrt(p[0] * p[1])), abs=1e-6)


def test_prompt_family_has_variants_and_ensembles():
    family = {v.name: v for v in prompt_family(load_prompt("tnews"))}
    assert {"news-2022", "labelnews-2022", "label-2022", "ensemble-mean", "ensemble-logmean"} == set(family)
    assert len(family["ensemble-mean"].templates) == 3 and family["ensemble-logmean"].combine == "logmean"


def test_calibration_math():
    m = np.array([[0.8, 0.6], [0.4, 0.5]])
    np.testing.assert_allclose(content_free(m, np.array([0.8, 0.5])), [[1.0, 1.2], [0.5, 1.0]])
    np.testing.assert_allclose(prior(m), m / np.array([0.6, 0.55]))


def test_compare_prompts_and_calibration_rows_score_each_pair_once(model_dir, tmp_path):
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data", n=6)
    scorer = NSPScorer.from_pretrained(model_dir, max_length=64)
    calls = []
    original = scorer.score
    scorer.score = lambda pairs, **kw: (calls.extend(pairs), original(pairs, **kw))[1]
    results = evaluate(scorer, EvalSettings(str(data), ["tnews"], compare_prompts=True,
                                            calibration=["content-free", "prior"]), tmp_path / "out")
    assert len(calls) == len(set(calls))  # every distinct pair scored once across variants and ensembles
    entry = results["tasks"]["tnews"]
    assert entry["variants"]["news-2022"]["accuracy"] == entry["accuracy"]
    assert set(entry["variants"]) >= {"label-2022", "ensemble-mean", "ensemble-logmean"}
    assert set(entry["calibrated"]) == {"content-free", "prior"}
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "content-free calibration" in md and "ensemble-logmean" in md and "news-2022 (default)" in md


def test_pair_counts_include_variant_and_calibration_rows(model_dir, tmp_path):
    """`pairs` counts every distinct pair a task needed, so `pairs_scored` never exceeds it."""
    from fewclue_fixture import write_fewclue

    from nspzero.harness import EvalSettings, evaluate
    from nspzero.scorer import NSPScorer

    data = write_fewclue(tmp_path / "fewclue", n=4)
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64)
    plain = evaluate(scorer, EvalSettings(str(data), ["eprstmt"]), tmp_path / "plain")["tasks"]["eprstmt"]
    assert plain["pairs"] == plain["pairs_scored"] == 4 * 2
    more = evaluate(scorer, EvalSettings(str(data), ["eprstmt"], compare_prompts=True, calibration=["content-free"]),
                    tmp_path / "more")["tasks"]["eprstmt"]
    assert more["pairs"] == more["pairs_scored"] > plain["pairs"]
    again = evaluate(scorer, EvalSettings(str(data), ["eprstmt"], compare_prompts=True, calibration=["content-free"]),
                     tmp_path / "more")["tasks"]["eprstmt"]
    assert again["pairs"] == more["pairs"] and again["pairs_scored"] == 0
