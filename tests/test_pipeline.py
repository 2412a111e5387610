"""The one classification path: chunked long texts against a hand-computed reference (windows,
aggregation), per-row labels against separate calls, bounded scoring chunks, top-k."""
import numpy as np
import pytest

from nspzero import pipeline
from nspzero.errors import UsageError
from nspzero.request import build_request

SENTENCE = "今天比赛球队赢了。"   # 9 tokens in the test vocab
TEMPLATE = "这是一则{label}新闻"    # 8 tokens with a two-character label: at max_length 64, 53 are left for text


def _combined(values, how):
    return max(values) if how == "max" else float(np.mean(values))


@pytest.mark.parametrize("aggregate", ["max", "mean"])
@pytest.mark.parametrize("overlap, windows", [
    (0, [SENTENCE * 5, SENTENCE * 5, SENTENCE * 2]),   # 5 sentences (45 tokens) fit in 53; a 6th would not
    (10, [SENTENCE * 5, SENTENCE * 5, SENTENCE * 4]),  # the last sentence (9 ≤ 10 tokens) starts the next window
])
def test_chunked_scores_equal_the_hand_computed_windows_and_aggregate(clf, reference, aggregate, overlap, windows):
    text = SENTENCE * 12
    result = clf.classify(text, ["体育", "财经"], template=TEMPLATE, long_text="chunk", aggregate=aggregate,
                          overlap=overlap)
    assert clf.scorer.max_length == 64
    for label in ("体育", "财经"):
        prompt = TEMPLATE.format(label=label)
        expected = _combined([reference(prompt, w) for w in windows], aggregate)
        assert abs(result.scores[label] - expected) <= 1e-5


def test_several_prompts_combine_per_window_then_windows_aggregate(clf, reference):
    text = SENTENCE * 7
    windows = [SENTENCE * 5, SENTENCE * 3]  # budget: 64 - 3 - 9 (the longer template) = 52 → 5 sentences
    templates = ["这是一则{label}新闻", "这是{label}"]  # combine="logmean": geometric mean per window
    result = clf.classify(text, ["体育", "财经"], template=templates, combine="logmean", long_text="chunk",
                          aggregate="max", overlap=0)
    for label in ("体育", "财经"):
        per_window = [float(np.exp(np.mean([np.log(reference(t.format(label=label), w)) for t in templates])))
                      for w in windows]
        assert abs(result.scores[label] - max(per_window)) <= 1e-5


def test_a_text_that_fits_is_scored_exactly_as_with_truncation(clf):
    texts = ["今天比赛球队赢了", "市场上涨公司发布手机"]
    chunked = clf.classify(texts, ["体育", "财经"], template=TEMPLATE, long_text="chunk")
    truncated = clf.classify(texts, ["体育", "财经"], template=TEMPLATE)
    assert [r.scores for r in chunked] == [r.scores for r in truncated]


def test_suffix_placement_reads_windows_too(clf, reference):
    text = SENTENCE * 7
    result = clf.classify(text, ["体育", "财经"], template=TEMPLATE, placement="suffix", long_text="chunk",
                          aggregate="mean", overlap=0)
    for label in ("体育", "财经"):
        expected = np.mean([reference(w, TEMPLATE.format(label=label)) for w in (SENTENCE * 5, SENTENCE * 2)])
        assert abs(result.scores[label] - expected) <= 1e-5


def test_per_row_labels_equal_separate_calls(clf):
    texts = ["今天比赛球队赢了", "这次买的东西很好", "市场上涨公司发布手机"]
    rows = [["体育", "财经"], {"好": ["很好", "不错"], "差": "很差"}, ["科技", "财经", "教育"]]
    together = clf.classify(texts, labels_per_text=rows, template="这是{label}")
    for text, labels, got in zip(texts, rows, together):
        alone = clf.classify(text, labels, template="这是{label}")
        assert got.label == alone.label and list(got.scores) == list(alone.scores)
        assert max(abs(got.scores[k] - alone.scores[k]) for k in alone.scores) <= 1e-5


def test_per_row_labels_are_scored_in_one_call(clf, monkeypatch):
    calls = []
    original = clf.scorer.score
    monkeypatch.setattr(clf.scorer, "score", lambda pairs, **kw: calls.append(len(pairs)) or original(pairs, **kw))
    clf.classify(["今天比赛", "东西很好"], labels_per_text=[["体育", "财经"], ["好", "差", "不错"]])
    assert calls == [5]


def test_a_label_description_is_a_whole_prompt_sentence(clf):
    text = "今天比赛球队赢了"
    by_template = clf.classify(text, ["体育", "财经"], template=TEMPLATE)
    by_description = clf.classify(text, {"体育": {"description": "这是一则体育新闻"},
                                         "财经": {"description": "这是一则财经新闻"}})
    assert by_description.scores == by_template.scores


def test_scoring_chunks_bound_the_pairs_per_call_and_change_nothing(clf, monkeypatch):
    texts = [f"今天比赛{'球队赢了' * (i % 3)}{i}" for i in range(7)]
    labels = ["体育", "财经", "科技"]
    request = build_request(labels, template=["这是{label}", "{label}"])   # 6 pairs per text
    whole = [r.scores for r in pipeline.run(clf.scorer, request, texts)]
    sizes = []
    original = clf.scorer.score
    monkeypatch.setattr(clf.scorer, "score", lambda pairs, **kw: sizes.append(len(pairs)) or original(pairs, **kw))
    chunked = [r.scores for r in pipeline.run(clf.scorer, request, texts, chunk_pairs=13)]
    assert sizes == [12, 12, 12, 6] and max(sizes) <= 13   # whole texts, never over the bound
    for a, b in zip(whole, chunked):
        assert max(abs(a[k] - b[k]) for k in a) <= 1e-6


def test_top_k_keeps_the_best_scores_and_decides_over_all(clf):
    labels = ["体育", "财经", "科技", "教育", "汽车"]
    full = clf.classify("今天比赛球队赢了", labels, multi_label=True, threshold=0.0)
    top = clf.classify("今天比赛球队赢了", labels, multi_label=True, threshold=0.0, top_k=2)
    assert top.scores == dict(list(full.scores.items())[:2])
    assert top.label == full.label and len(top.label) == 5   # the decision still used every label


def test_normalize_is_applied_by_make_result_so_every_door_gets_it(clf):
    """The request carries `normalize`; the pipeline's mapping step divides the scores shown (after
    top_k) by their sum — the Python call, the server and Ray all end in it."""
    from nspzero.request import ClassifyArgs

    labels = ["体育", "财经", "科技"]
    plain = clf.classify("今天比赛球队赢了", labels)
    args = ClassifyArgs.of(text="今天比赛球队赢了", labels=labels, normalize=True, top_k=2)
    request = args.to_request()
    assert request.normalize
    [via_pipeline] = pipeline.run(clf.scorer, request, ["今天比赛球队赢了"])
    shown = dict(list(plain.scores.items())[:2])
    assert via_pipeline.scores == pytest.approx({k: v / sum(shown.values()) for k, v in shown.items()}, abs=1e-12)
    assert via_pipeline.label == plain.label and clf.classify_args(args).scores == via_pipeline.scores


@pytest.mark.parametrize("kwargs, message", [
    (dict(long_text="split"), "long_text: Input should be 'truncate' or 'chunk', got 'split'"),
    (dict(aggregate="median"), "aggregate: Input should be 'max' or 'mean', got 'median'"),
    (dict(overlap=-1), "overlap: Input should be greater than or equal to 0, got -1"),
    (dict(top_k=0), "top_k: Input should be greater than or equal to 1, got 0"),
    (dict(labels=None, labels_per_text=[["体育", "财经"]]),
     "labels_per_text: one label set per text is needed, got 1 label sets for 2 texts"),
    (dict(labels=None, labels_per_text=[["体育", "财经"], ["好", "好"]]), "labels_per_text[1]: label '好' is given twice"),
    (dict(labels=None, labels_per_text=[None, ["好", "差"]]), "texts[0] has no labels"),
    (dict(labels=[["体育", "财经"], ["好", "差"]]), "for one label set per text use labels_per_text"),
])
def test_bad_options_are_refused_in_one_line(clf, kwargs, message):
    kwargs = {"labels": ["体育", "财经"], **kwargs}
    with pytest.raises(UsageError) as info:
        clf.classify(["今天比赛", "东西很好"], **kwargs)
    assert message in str(info.value)


def test_one_chunker_keeps_whole_items_and_bounds_each_run():
    sizes = [3, 4, 1, 9, 2, 2]
    runs = list(pipeline.chunked(sizes, lambda n: n, 6))
    assert runs == [[3], [4, 1], [9], [2, 2]]  # an item bigger than the bound is a run of its own
    assert list(pipeline.chunked([], len, 6)) == []


def test_preprocess_forward_postprocess_is_run(clf):
    request = build_request(["体育", "财经"], template="这是{label}")
    texts = ["今天比赛", "东西很好"]
    cands = pipeline.preprocess(clf.scorer, request, texts)
    results = pipeline.postprocess(request, texts, pipeline.forward(clf.scorer, cands))
    assert [r.to_dict() for r in results] == [r.to_dict() for r in pipeline.run(clf.scorer, request, texts)]


def test_a_call_of_several_chunks_shows_one_bar_over_its_texts(clf, capsys):
    request = build_request(["体育", "财经"])
    list(pipeline.label_rows(clf.scorer, request, ["今天比赛", "市场上涨", "东西很好"], progress=True, chunk_pairs=2))
    err = capsys.readouterr().err
    assert "classifying" in err and "/3 " in err and "scoring" not in err   # texts, not pairs
    list(pipeline.label_rows(clf.scorer, request, ["今天比赛", "市场上涨"], progress=True))   # one chunk: the pair bar
    err = capsys.readouterr().err
    assert "scoring" in err and "classifying" not in err


def test_a_call_of_several_chunks_warns_once_about_cut_pairs(clf, nspzero_caplog):
    """Truncation gives one warning per call, its counts summed over the call's chunks."""
    request = build_request(["体育", "财经"])
    long = ["今天比赛球队赢了" * 20, "市场上涨公司发布手机" * 20, "东西很好"]   # two texts longer than max_length=64
    list(pipeline.label_rows(clf.scorer, request, long, chunk_pairs=2))   # three chunks of one text each
    warnings = [r.getMessage() for r in nspzero_caplog.records if "truncated" in r.getMessage()]
    assert warnings == ["4 of 6 pairs were longer than max_length=64 tokens and were truncated (text cut from its end)"]


def test_a_call_that_fails_does_not_warn_with_partial_counts(clf, nspzero_caplog, monkeypatch):
    """The truncation warning sums a whole call: a call that fails midway gives its error, not a count."""
    request = build_request(["体育", "财经"])
    long = ["今天比赛球队赢了" * 20, "市场上涨公司发布手机" * 20, "东西很好"]
    real, calls = pipeline.forward, []

    def fails_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the device failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "forward", fails_second)
    with pytest.raises(RuntimeError, match="the device failed"):
        list(pipeline.label_rows(clf.scorer, request, long, chunk_pairs=2))
    assert len(calls) == 2 and not [r for r in nspzero_caplog.records if "truncated" in r.getMessage()]


def test_forward_scores_every_set_in_one_call_and_combines_per_candidate():
    """pipeline.forward: all sets' pairs in ONE scoring call, in order (so sorting and de-duplication
    span them), split back and combined per candidate. A fake scorer (a number per pair) stands in."""
    import math

    from nspzero.candidates import Candidates, best
    from nspzero.scorer import Pair

    table = {"a1": 0.9, "a2": 0.5, "b1": 0.2, "c1": 0.4, "c2": 0.1}

    class Fake:
        max_length = 64
        calls = []

        def score(self, pairs, **kw):
            self.calls.append([p.first for p in pairs])
            return np.array([table[p.first] for p in pairs])

    def of(*names):
        return [Pair(n, "text") for n in names]
    first = Candidates.of([("A", of("a1", "a2")), ("B", of("b1"))])
    second = Candidates.of([("C", of("c1", "c2")), ("B", of("b1"))], how="logmean")
    rows = pipeline.forward(Fake(), [first, second])
    assert Fake.calls == [["a1", "a2", "b1", "c1", "c2", "b1"]]        # one call, in order
    np.testing.assert_allclose(rows[0], [0.7, 0.2])                    # mean of 0.9 and 0.5
    np.testing.assert_allclose(rows[1], [math.sqrt(0.4 * 0.1), 0.2])   # geometric mean
    assert best(first.names, rows[0]) == "A" and best(second.names, rows[1]) == "C"


# ---- labels the tokenizer cannot tell apart (issue 29, item 5) -----------------------------------------
@pytest.mark.parametrize("labels, first, second", [
    (["Hello", "hello"], "Hello", "hello"),                    # case, under an uncased vocab
    (["movie", "Móvie", "好"], "movie", "Móvie"),               # accents stripped
    (["体育", "Cafe", "café"], "Cafe", "café"),                  # both read as [UNK]
    ({"甲": ["hello", "world"], "乙": ["World", "HELLO"]}, "甲", "乙"),  # the same words in another order
])
def test_labels_the_tokenizer_cannot_tell_apart_are_refused_naming_both(clf, labels, first, second):
    """The request passes (it is built before the model loads: `US` and `us` are two labels), but this
    model's tokenizer gives both the same ids, so they would always score the same: one line naming both,
    in every door, here the Python call with shared and with per-text labels."""
    with pytest.raises(UsageError) as exc:
        clf.classify("今天比赛", labels, template="这是{label}")
    message = str(exc.value)
    assert "\n" not in message and f"'{first}' and '{second}'" in message and "always score the same" in message
    with pytest.raises(UsageError, match="always score the same"):
        clf.classify(["今天比赛", "很好"], labels_per_text=[["体育", "财经"], labels], template="这是{label}")


def test_labels_with_distinct_tokens_still_score(clf):
    """Labels the vocabulary tells apart are never refused, however alike they look."""
    result = clf.classify("今天比赛", ["hello", "world", "体育", "体 育 新闻"], template="这是{label}")
    assert len(result.scores) == 4


def test_labels_the_tokenizer_cannot_tell_apart_are_refused_by_the_cli(model_dir, capsys):
    from conftest import run_cli

    code, _, err = run_cli(["classify", "-m", model_dir, "-l", "Cafe,café", "今天比赛"], capsys)
    assert code == 2 and "'Cafe' and 'café'" in err and len(err.strip().splitlines()) == 1
