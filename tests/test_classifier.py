import numpy as np
import pytest

from nspzero import ClassificationResult
from nspzero.errors import UsageError
from nspzero.mapping import combine

TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差"]


def test_classify_scores_are_mean_p_isnext_of_each_label(clf):
    results = clf.classify(TEXTS, ["体育", "财经", "科技"], template="这是一则{label}新闻")
    assert len(results) == 3 and all(isinstance(r, ClassificationResult) for r in results)
    for r in results:
        expected = clf.score_pairs([f"这是一则{l}新闻" for l in ["体育", "财经", "科技"]], [r.text] * 3)
        assert r.scores == pytest.approx(dict(zip(["体育", "财经", "科技"], expected)), abs=1e-6)
        assert list(r.scores.values()) == sorted(r.scores.values(), reverse=True)
        assert r.label == max(r.scores, key=r.scores.get)


def test_single_string_gives_single_result(clf):
    r = clf.classify("今天比赛球队赢了", ["体育", "财经"])
    assert isinstance(r, ClassificationResult) and r.text == "今天比赛球队赢了"


def test_suffix_placement_puts_text_first(clf):
    r = clf.classify("今天比赛", ["体育", "财经"], template="{label}新闻", placement="suffix")
    expected = clf.score_pairs(["今天比赛", "今天比赛"], ["体育新闻", "财经新闻"])
    assert [r.scores["体育"], r.scores["财经"]] == pytest.approx(list(expected), abs=1e-6)


def test_several_verbalizations_and_templates_are_averaged(clf):
    labels = {"pos": ["很好", "不错"], "neg": "很差"}
    templates = ["东西{label}", "这次买的东西{label}"]
    r = clf.classify("我买的手机", labels, template=templates)
    pos = clf.score_pairs(["东西很好", "东西不错", "这次买的东西很好", "这次买的东西不错"], ["我买的手机"] * 4).mean()
    neg = clf.score_pairs(["东西很差", "这次买的东西很差"], ["我买的手机"] * 2).mean()
    assert r.scores["pos"] == pytest.approx(pos, abs=1e-6)
    assert r.scores["neg"] == pytest.approx(neg, abs=1e-6)


def test_multi_label_threshold(clf):
    r = clf.classify("今天比赛", ["体育", "财经", "科技"], multi_label=True, threshold=0.0)
    assert r.label == list(r.scores)  # every label passes 0, best first
    none = clf.classify("今天比赛", ["体育"], multi_label=True, threshold=1.0)
    assert none.label == []


def test_results_do_not_depend_on_batch_size_or_text_order(model_dir):
    from nspzero import NSPClassifier

    a = NSPClassifier.from_pretrained(model_dir, batch_size=1).classify(TEXTS, ["体育", "财经"])
    b = NSPClassifier.from_pretrained(model_dir, batch_size=64).classify(TEXTS[::-1], ["体育", "财经"])[::-1]
    for x, y in zip(a, b):
        assert x.label == y.label
        np.testing.assert_allclose([x.scores[k] for k in x.scores], [y.scores[k] for k in x.scores], atol=1e-5)


@pytest.mark.parametrize("texts, labels, kwargs, message", [
    ([], ["a", "b"], {}, "no texts"),
    (["ok", ""], ["a", "b"], {}, r"texts\[1\] is empty"),
    (["ok", None], ["a", "b"], {}, r"texts\[1\]: Input should be a valid string, got None"),
    (["ok"], ["a", "a"], {}, "given twice"),
    (["ok"], ["a", "b"], {"template": "{label.__class__}"}, "not allowed"),
    (["ok"], ["a", "b"], {"template": "no placeholder"}, "no {label}"),
    (["ok"], ["a", "b"], {"placement": "middle"}, "placement"),
    (["ok"], ["a", "b"], {"threshold": 2.0}, "threshold"),
    (["ok"], ["a", "b"], {"template": []}, "no template"),
])
def test_classify_rejects_bad_input_with_a_clear_message(clf, texts, labels, kwargs, message):
    with pytest.raises(UsageError, match=message):
        clf.classify(texts, labels, **kwargs)


def test_score_pairs_validation(clf):
    with pytest.raises(UsageError, match="equal length"):
        clf.score_pairs(["a"], ["b", "c"])
    with pytest.raises(UsageError, match="two lists"):
        clf.score_pairs("a", "b")


def test_combine_rules_and_classify_ensembles(clf):
    assert combine([0.25, 1.0], "mean") == pytest.approx(0.625)
    assert combine([0.25, 1.0], "logmean") == pytest.approx(0.5)
    with pytest.raises(UsageError, match="combine"):
        combine([0.5], "max")
    templates = ["{label}", "这是一则{label}新闻"]
    r = clf.classify("今天比赛", ["体育", "财经"], template=templates, combine="logmean")
    p = clf.score_pairs(["体育", "这是一则体育新闻"], ["今天比赛"] * 2)
    assert r.scores["体育"] == pytest.approx(float(np.sqrt(p[0] * p[1])), abs=1e-6)


class _Terminal:
    """A stderr that says it is a terminal (tqdm draws only on one when progress is None)."""

    def __init__(self):
        import io

        self.buffer = io.StringIO()

    def isatty(self):
        return True

    def write(self, text):
        return self.buffer.write(text)

    def flush(self):
        pass


@pytest.mark.parametrize("progress, terminal, delay, drawn", [
    (None, False, 0.0, False),   # not a terminal (a notebook, a log file): quiet
    (None, True, 3.0, False),    # a terminal, but the call ends before the delay: quiet
    (None, True, 0.0, True),     # a terminal and a long call: one bar
    (True, False, 3.0, True),    # asked for: drawn anyway
    (False, True, 0.0, False),
])
def test_classify_draws_a_bar_only_when_asked_or_long_on_a_terminal(clf, monkeypatch, progress, terminal, delay,
                                                                     drawn):
    import sys

    from nspzero import scorer as scorer_module

    stderr = _Terminal() if terminal else __import__("io").StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(scorer_module, "PROGRESS_DELAY_S", delay)
    monkeypatch.setattr(scorer_module, "PROGRESS_MIN_PAIRS", 4)
    clf.classify(["今天比赛", "市场上涨", "东西很好"], ["体育", "财经"], progress=progress)
    written = stderr.buffer.getvalue() if terminal else stderr.getvalue()
    assert ("scoring" in written) == drawn, written


# ==== Bad-input rows (moved here from test_bad_input.py: score_pairs' argument checks; one label with multi_label works) ====
from bad_input import case, check_case, env  # noqa: E402,F401  (env is a fixture)

CLASSIFIER_BAD_INPUT = [
    case("score-pairs-strings", lambda e: e.clf.score_pairs("a", "b"), UsageError, "takes two lists of strings"),
    case("score-pairs-unequal", lambda e: e.clf.score_pairs(["a", "b"], ["c"]), UsageError,
         "lists of equal length, got 2 and 1"),
    case("score-pairs-none", lambda e: e.clf.score_pairs(["a"], [None]), UsageError, "second[0] is NoneType"),
    case("score-pairs-surrogate", lambda e: e.clf.score_pairs(["a\ud800"], ["b"]), UsageError,
         "first[0] is not valid Unicode"),
]


@pytest.mark.parametrize("fn, exc, message", CLASSIFIER_BAD_INPUT)
def test_classifier_bad_input_is_a_one_line_error(env, fn, exc, message):
    check_case(fn, env, exc, message)


def test_one_label_with_multi_label_is_allowed(clf, model_dir, capsys):
    import json

    from conftest import run_cli

    r = clf.classify("今天比赛", ["体育"], multi_label=True, threshold=0.0)
    assert r.label == ["体育"] and list(r.scores) == ["体育"]
    code, out, err = run_cli(["classify", "-m", model_dir, "-l", "体育", "--multi-label", "--threshold", "0", "今天比赛"],
                             capsys)
    assert code == 0, err
    assert json.loads(out)["label"] == ["体育"]
# ==== end of the moved bad-input rows ====
