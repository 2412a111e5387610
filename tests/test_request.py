"""The one request: its rules, and the proof that every front door (Python, CLI, HTTP server, Ray)
gives the same answer for the same request."""
import json

import pytest

from nspzero.errors import UsageError
from nspzero.request import ClassifyArgs, RequestError, build_request, check_text, has_content

from bad_input import case, check_case
from conftest import run_cli


# ---- the rules -------------------------------------------------------------------------------------
def test_a_prompt_set_gives_everything_and_explicit_arguments_override_it():
    r = build_request(prompt="eprstmt:review-suffix")
    assert (r.labels, r.placement, r.templates, r.combine) == (("Negative", "Positive"), "suffix", ("总之{label}",), "mean")
    assert r.prompts == (("总之很差",), ("总之很好",))
    assert r.candidates("东西").pairs[0].first == "东西"  # suffix: the text comes first
    r = build_request(prompt="eprstmt:review-suffix", placement="prefix", template="{label}", combine="logmean")
    assert (r.placement, r.templates, r.combine) == ("prefix", ("{label}",), "logmean")
    assert r.candidates("东西").pairs[0].first == "很差"
    assert build_request(prompt="eprstmt:review-ensemble").combine == "logmean"  # the variant's own rule is kept
    assert build_request(prompt="tnews", labels=["news_sports", "news_game"]).labels == ("news_sports", "news_game")


def test_a_request_renders_every_template_and_word_once_per_label():
    r = build_request({"pos": ["很好", "不错"], "neg": "很差"}, template=["东西{label}", "这次{label}"])
    assert r.prompts == (("东西很好", "东西不错", "这次很好", "这次不错"), ("东西很差", "这次很差"))
    assert r.pairs_per_text == 6
    cands = r.candidates("我买的手机")
    assert cands.names == ("pos", "neg") and cands.counts == (4, 2) and len(cands.pairs) == 6


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "no labels given"),
    (dict(labels=["a", "b"], threshold=True), r"^threshold: Input should be a valid number, got True$"),
    (dict(labels=["a", "b"], threshold=float("nan")), r"^threshold must be a probability between 0 and 1, got nan$"),
    (dict(labels=["a", "b"], top_k=True), r"^top_k: Input should be a valid integer, got True$"),
    (dict(labels=["a", "b"], overlap=False), r"^overlap: Input should be a valid integer, got False$"),
    (dict(labels=["a", "b"], multi_label="yes"), r"^multi_label: Input should be a valid boolean, got 'yes'$"),
    (dict(labels=["a", "b"], combine="max"), r"^combine: Input should be 'mean' or 'logmean', got 'max'$"),
    (dict(labels=["a", "b"], template=5), "^template: "),
    (dict(prompt="tnews", labels={"a": "b"}), "labels must be a list of its label names"),
    (dict(prompt="tnews", labels=["sports"]), "labels 'sports' not in prompt tnews"),
    (dict(prompt="ocnli"), "sentence-pair prompt"),
    (dict(prompt=""), "prompt must be the name of a prompt set"),
])
def test_bad_requests_are_refused_before_any_model_loads(kwargs, message):
    with pytest.raises(UsageError, match=message):
        build_request(**kwargs)


@pytest.mark.parametrize("kwargs, field", [
    (dict(labels=["a", "b"], top_k=0), "top_k"), (dict(labels=["a", "a"]), "labels"),
    (dict(labels=["a", "b"], template="{labl}"), "template"), (dict(prompt="tnewz"), "prompt"),
    (dict(labels=["a", "b"], placement="middle"), "placement"),
])
def test_every_request_error_names_its_field(kwargs, field):
    """The server answers 422 {"detail", "field"} from this; the page shows the message at `field`."""
    with pytest.raises(RequestError) as caught:
        build_request(**kwargs)
    assert caught.value.field == field


def test_messages_never_echo_a_huge_input():
    with pytest.raises(RequestError) as caught:
        ClassifyArgs.of(texts=["今天"], labels=["a", "b"], prompt=5 * ["x" * 10**6])
    assert len(str(caught.value)) < 300 and caught.value.field == "prompt"
    with pytest.raises(RequestError) as caught:
        ClassifyArgs.of(texts=["今天"], labels="好" * 10**6)
    assert len(str(caught.value)) < 300


def test_unknown_fields_are_refused():
    with pytest.raises(RequestError, match="^lables: unknown field") as caught:
        ClassifyArgs.of(texts=["今天"], lables=["a", "b"])
    assert caught.value.field == "lables"


def test_the_server_takes_only_named_prompt_sets(tmp_path):
    with pytest.raises(UsageError, match="only named prompt sets"):
        build_request(prompt=str(tmp_path / "mine.yaml"), prompt_files=False)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x00", "\u200b\u200d", "\x07\t\n", "\ufeff"])
def test_texts_without_visible_content_are_refused(text):
    assert not has_content(text)
    with pytest.raises(UsageError, match="is empty"):
        check_text(text, "texts[0]")


# ---- per-row labels --------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, message", [
    ([["体育", "财经"], ["好", "差"]], "a list holds label names only; for one label set per text use labels_per_text"),
    (["体育,财经", "好,差"], "label '体育,财经' holds a comma: give one name per item"),
    ("体育,财经", "a single string"),
])
def test_one_label_set_is_never_guessed_to_be_one_per_text(labels, message):
    """`labels` is one label set; a caller with one set per text says so (`labels_per_text`), so a
    list of comma strings can no longer be read as one set whose names hold commas."""
    with pytest.raises(RequestError, match=message) as caught:
        ClassifyArgs.of(texts=["今天", "东西"], labels=labels)
    assert caught.value.field == "labels"


def test_a_dict_label_may_hold_a_comma():
    """A dict cannot be mistaken for per-text sets (prompt files name labels so)."""
    assert build_request({"体育,运动": "体育", "财经": "财经"}).labels == ("体育,运动", "财经")


def test_labels_per_text_takes_lists_dicts_and_comma_strings():
    args = ClassifyArgs.of(texts=["今天", "东西", "市场"], labels=["体育", "财经"],
                           labels_per_text=[["体育", "财经"], "好,差", None])
    request = args.to_request()
    own = args.label_sets(request, 3)
    assert own[0].names == ("体育", "财经") and own[1].names == ("好", "差") and own[2] is None
    with pytest.raises(RequestError, match=r"^labels_per_text\[1\]: label '好' is given twice") as caught:
        ClassifyArgs.of(texts=["a", "b"], labels_per_text=[["体育", "财经"], ["好", "好"]]).label_sets(request, 2)
    assert caught.value.field == "labels_per_text"


def test_a_row_label_set_follows_the_request_rules_and_is_built_once():
    request = build_request(["体育", "财经"], template="这是一则{label}新闻")
    own = request.labels_for("好,差", "a.jsonl:3: field 'labels'")
    assert own.names == ("好", "差") and own.prompts == (("这是一则好新闻",), ("这是一则差新闻",))
    assert request.labels_for("好,差", "elsewhere") is own
    assert request.row_labels(None, "a.jsonl:4") is None and request.row_labels("", "a.jsonl:5") is None
    with pytest.raises(UsageError, match=r"^labels\[2\]: label '好' is given twice"):
        request.labels_for(["好", "好"], "labels[2]")


def test_row_labels_errors_are_data_errors_naming_the_row():
    from nspzero.errors import DataError

    request = build_request(None, labels_per_row=True)
    assert request.label_set is None and request.labels == ()
    with pytest.raises(DataError, match=r"^a.jsonl:4: no labels for this row"):
        request.row_labels(None, "a.jsonl:4")
    with pytest.raises(DataError, match=r"^a.jsonl:5: field 'labels': label '体育' is given twice"):
        request.row_labels(["体育", "体育"], "a.jsonl:5")


def test_with_a_prompt_set_row_labels_pick_its_labels():
    request = build_request(prompt="eprstmt")
    picked = request.labels_for(list(request.labels)[:2], "row")
    assert picked.names == request.labels[:2] and picked.prompts == request.prompts[:2]
    with pytest.raises(UsageError, match=r"row: labels 'nope' not in prompt eprstmt"):
        request.labels_for(["nope", request.labels[0]], "row")


def test_descriptions_are_prompt_sentences_beside_templated_words():
    request = build_request({"体育": {"words": ["体育", "比赛"], "description": "这是一则运动新闻"}, "财经": "财经"},
                            template="这是{label}")
    assert request.prompts == (("这是体育", "这是比赛", "这是一则运动新闻"), ("这是财经",))
    assert request.to_dict()["labels"]["体育"] == {"words": ["体育", "比赛"], "descriptions": ["这是一则运动新闻"]}
    for bad, message in [({"a": {"wordz": "x"}, "b": "b"}, "label 'a': unknown key 'wordz'"),
                         ({"a": {}, "b": "b"}, "label 'a': nothing given"),
                         ({"a": {"description": ""}, "b": "b"}, "label 'a': description is empty; write it or remove it")]:
        with pytest.raises(UsageError, match=message):
            build_request(bad)


# ---- every front door gives the same answer ---------------------------------------------------------
TEXTS = ["今天比赛球队赢了", "这次买的东西很好", "市场上涨公司发布手机"]
# long enough for several windows at max_length 64 (sentences end with 。 and ！)
LONG_TEXTS = ["今天比赛球队赢了。" * 9 + "市场上涨公司发布手机！" * 6, "这次买的东西很好",
              "学校老师学生上文中指其是否相关论文。" * 8]
REQUESTS = {
    "labels-and-template": dict(labels=["体育", "财经", "科技"], template="这是一则{label}新闻"),
    "variant-with-logmean": dict(prompt="eprstmt:review-ensemble"),
    "placement-override": dict(prompt="eprstmt:review-suffix", placement="prefix"),
    "multi-label": dict(labels=["体育", "财经"], multi_label=True, threshold=0.4),
    "per-row-labels": dict(labels_per_text=[["体育", "财经"], "好,差,不错", ["科技", "财经"]], template="这是{label}"),
    "long-text-chunk": dict(labels=["体育", "财经", "教育"], template="这是一则{label}新闻", long_text="chunk",
                            aggregate="mean", overlap=8),
    "top-k": dict(labels=["体育", "财经", "科技", "教育"], top_k=2),
    "one-label": dict(labels=["体育"], template="这是一则{label}新闻"),
}


def _texts(name: str) -> list[str]:
    return LONG_TEXTS if name == "long-text-chunk" else TEXTS


def _cli_args(kw: dict) -> list[str]:
    args = []
    if "labels" in kw:
        args += ["--labels", ",".join(kw["labels"])]
    for name in ("prompt", "template", "placement", "threshold", "aggregate", "overlap"):
        if name in kw:
            args += [f"--{name}", str(kw[name])]
    if "long_text" in kw:
        args += ["--long-text", kw["long_text"]]
    if "top_k" in kw:
        args += ["--top-k", str(kw["top_k"])]
    if kw.get("multi_label"):
        args.append("--multi-label")
    return args


def _input_file(tmp, name: str, kw: dict):
    """The request's texts as a JSONL file; per-row labels go into each row's 'labels' field."""
    own = kw.get("labels_per_text")
    path = tmp / f"in-{name}.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t, **({"labels": own[i]} if own else {})},
                                       ensure_ascii=False) + "\n" for i, t in enumerate(_texts(name))),
                    encoding="utf-8")
    return path, {k: v for k, v in kw.items() if k != "labels_per_text"}


@pytest.fixture(scope="module")
def decisive_clf(decisive_model_dir):
    """A tiny model whose scores spread (0.75-0.9), so a 1e-5 agreement means the same request."""
    from nspzero import NSPClassifier

    return NSPClassifier.from_pretrained(decisive_model_dir, device="cpu", max_length=64, batch_size=4)


@pytest.fixture(scope="module")
def through_every_door(decisive_model_dir, decisive_clf, tmp_path_factory):
    """{door: {request name: [result dicts]}} for Python, the CLI, the HTTP server and Ray."""
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    model_dir, clf = decisive_model_dir, decisive_clf
    tmp = tmp_path_factory.mktemp("doors")
    doors: dict = {"python": {}, "cli": {}, "server": {}, "server-hf": {}, "ray": {}}
    for name, kw in REQUESTS.items():
        doors["python"][name] = [r.to_dict() for r in clf.classify(_texts(name), **kw)]
    with TestClient(create_app(clf)) as client:
        for name, kw in REQUESTS.items():
            response = client.post("/classify", json={"texts": _texts(name), **kw})
            assert response.status_code == 200, response.text
            doors["server"][name] = response.json()["results"]
        for name, kw in REQUESTS.items():
            if not _hf_can_state(kw):
                continue
            params = {"candidate_labels": kw["labels"],
                      **({"hypothesis_template": kw["template"].replace("{label}", "{}")} if "template" in kw else {})}
            response = client.post("/", json={"inputs": _texts(name), "parameters": params})
            assert response.status_code == 200, response.text
            doors["server-hf"][name] = [{"text": a["sequence"], "label": a["labels"][0],
                                         "scores": dict(zip(a["labels"], a["scores"]))} for a in response.json()]
    capsys = _Capture()
    for name, kw in REQUESTS.items():
        src, file_kw = _input_file(tmp, name, kw)
        out = tmp / f"cli-{name}.jsonl"
        code, _, err = run_cli(["classify", "-m", model_dir, "--max-length", "64", "-i", str(src), "-o", str(out)]
                               + _cli_args(file_kw), capsys)
        assert code == 0, err
        doors["cli"][name] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    try:
        import ray  # noqa: F401
    except ImportError:
        doors.pop("ray")
        return doors
    from nspzero.distributed import classify_with_ray
    from nspzero.distributed.common import private_ray  # never plain ray.init(): it joins a stale cluster

    with private_ray(num_cpus=2):
        for name, kw in REQUESTS.items():
            src, file_kw = _input_file(tmp, name, kw)
            out = tmp / f"ray-{name}.jsonl"
            request = build_request(file_kw.pop("labels", None), labels_per_row=True, **file_kw)
            classify_with_ray(str(src), str(out), model_dir, request=request, max_length=64, batch_size=4,
                              device="cpu")
            doors["ray"][name] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return doors


class _Capture:
    """A stand-in for pytest's capsys where outputs go to files (run_cli reads it once per call)."""

    def readouterr(self):
        class Out:
            out = err = ""
        return Out()


def _hf_can_state(kw: dict) -> bool:
    """The Hugging Face payload says labels and one template, nothing else of a request."""
    return not set(kw) - {"labels", "template"}


@pytest.mark.parametrize("door,name", [(door, name) for door in ("cli", "server", "server-hf", "ray")
                                       for name, kw in REQUESTS.items() if door != "server-hf" or _hf_can_state(kw)])
def test_every_front_door_gives_the_python_answer(through_every_door, door, name):
    if door not in through_every_door:
        pytest.skip("Ray is not installed")
    expected, got = through_every_door["python"][name], through_every_door[door][name]
    assert [r["text"] for r in got] == _texts(name)
    for want, have in zip(expected, got):
        assert have["label"] == want["label"]
        assert list(have["scores"]) == list(want["scores"])  # the same labels, best first
        assert max(abs(have["scores"][k] - want["scores"][k]) for k in want["scores"]) <= 1e-5


def test_the_overrides_took_effect(through_every_door, decisive_clf):
    """The placement override and the variant's logmean change the scores by far more than the
    doors' 1e-5 tolerance: the doors agree on the overridden request, not on a shared default."""
    python = through_every_door["python"]
    suffix = [r.to_dict() for r in decisive_clf.classify(TEXTS, prompt="eprstmt:review-suffix")]
    assert max(abs(a["scores"][k] - b["scores"][k])
               for a, b in zip(python["placement-override"], suffix) for k in a["scores"]) > 1e-2
    mean = [r.to_dict() for r in decisive_clf.classify(TEXTS, prompt="eprstmt:review-ensemble", combine="mean")]
    assert max(abs(a["scores"][k] - b["scores"][k])
               for a, b in zip(python["variant-with-logmean"], mean) for k in a["scores"]) > 1e-4


def test_chunking_and_top_k_took_effect(through_every_door, decisive_clf):
    """Chunked long texts score differently from truncated ones (the windows were read), and
    top-k kept 2 of 4 labels' scores while the decision is the best of all 4."""
    python = through_every_door["python"]
    kw = {k: v for k, v in REQUESTS["long-text-chunk"].items() if k not in ("long_text", "aggregate", "overlap")}
    truncated = [r.to_dict() for r in decisive_clf.classify(LONG_TEXTS, **kw)]
    assert max(abs(a["scores"][k] - b["scores"][k])
               for a, b in zip(python["long-text-chunk"], truncated) for k in a["scores"]) > 1e-4
    full = decisive_clf.classify(TEXTS, labels=REQUESTS["top-k"]["labels"])
    for top, whole in zip(python["top-k"], full):
        assert len(top["scores"]) == 2 and top["label"] == whole.label
        assert top["scores"] == dict(list(whole.scores.items())[:2])


def test_eval_of_the_equivalent_task_gives_the_python_answer(decisive_clf, tmp_path):
    """The harness is a front door too: `nspzero eval` on eprstmt scores its texts as
    `classify(texts, prompt="eprstmt")` does (the task's prompt set), within 1e-5."""
    from fewclue_fixture import write_fewclue

    from nspzero.harness import EvalSettings, evaluate

    data_dir = write_fewclue(tmp_path / "fewclue", n=6)
    evaluate(decisive_clf.scorer, EvalSettings(str(data_dir), ["eprstmt"]), tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "eprstmt.predictions.jsonl").read_text("utf-8").splitlines()]
    texts = [json.loads(line)["sentence"]
             for line in (data_dir / "eprstmt" / "test_public.json").read_text("utf-8").splitlines()]
    python = decisive_clf.classify(texts, prompt="eprstmt")
    assert len(rows) == len(python) == 6
    for row, want in zip(rows, python):
        assert row["prediction"] == want.label
        assert max(abs(row["scores"][k] - want.scores[k]) for k in want.scores) <= 1e-5


# ---- bad requests through the Python door: one line naming the field ------------------------------
LABELS = ["体育", "财经"]

BAD_REQUESTS = [
    case("empty-string-text", lambda clf: clf.classify("", LABELS), UsageError, "texts[0] is empty"),
    case("empty-text-in-list", lambda clf: clf.classify(["今天比赛", ""], LABELS), UsageError, "texts[1] is empty"),
    case("whitespace-text", lambda clf: clf.classify(" \t\n\u3000", LABELS), UsageError, "texts[0] is empty"),
    case("none-item", lambda clf: clf.classify(["今天比赛", None], LABELS), UsageError, "texts[1]: Input should be a valid string, got None"),
    case("int-item", lambda clf: clf.classify([42, "今天比赛"], LABELS), UsageError, "texts[0]: Input should be a valid string, got 42"),
    case("texts-none", lambda clf: clf.classify(None, LABELS), UsageError, "no texts: give `texts`"),
    case("empty-text-list", lambda clf: clf.classify([], LABELS), UsageError, "no texts given"),
    case("lone-surrogate-text", lambda clf: clf.classify(["好\udcff"], LABELS), UsageError,
         "texts[0] is not valid Unicode: lone surrogate '\\udcff' at character 1"),
    case("zero-labels", lambda clf: clf.classify("今天比赛", []), UsageError, "no labels given"),
    case("zero-labels-dict", lambda clf: clf.classify("今天比赛", {}), UsageError, "no labels given"),
    case("duplicate-labels", lambda clf: clf.classify("今天比赛", ["体育", "财经", "体育"]), UsageError,
         "label '体育' is given twice"),
    case("empty-label", lambda clf: clf.classify("今天比赛", ["体育", ""]), UsageError, "a label is an empty string"),
    case("whitespace-label", lambda clf: clf.classify("今天比赛", ["体育", "  "]), UsageError,
         "a label is an empty string"),
    case("labels-as-one-string", lambda clf: clf.classify("今天比赛", "体育,财经"), UsageError,
         "labels: a single string '体育,财经'"),
    case("non-string-label", lambda clf: clf.classify("今天比赛", ["体育", 3]), UsageError, "a label must be a string, got int 3"),
    case("empty-verbalization", lambda clf: clf.classify("今天比赛", {"pos": "", "neg": "很差"}), UsageError,
         "label 'pos': its verbalization is empty; write it or remove it"),
    case("lone-surrogate-label", lambda clf: clf.classify("今天比赛", ["体育\udcff", "财经"]), UsageError,
         "is not valid Unicode: lone surrogate"),
    case("template-without-label", lambda clf: clf.classify("今天比赛", LABELS, template="这是一则新闻"), UsageError,
         "has no {label} placeholder"),
    case("template-attribute", lambda clf: clf.classify("今天比赛", LABELS, template="{label.__class__}"), UsageError,
         "placeholder {label.__class__} is not allowed"),
    case("template-index", lambda clf: clf.classify("今天比赛", LABELS, template="{label[0]}"), UsageError,
         "placeholder {label[0]} is not allowed"),
    case("template-positional", lambda clf: clf.classify("今天比赛", LABELS, template="{0}"), UsageError,
         "placeholder {0} is not allowed"),
    case("template-empty-braces", lambda clf: clf.classify("今天比赛", LABELS, template="{}"), UsageError,
         "placeholder {} is not allowed"),
    case("template-format-spec", lambda clf: clf.classify("今天比赛", LABELS, template="{label:>9}"), UsageError,
         "placeholder {label:>9} is not allowed"),
    case("template-conversion", lambda clf: clf.classify("今天比赛", LABELS, template="{label!r}"), UsageError,
         "placeholder {label!r} is not allowed"),
    case("template-unbalanced-open", lambda clf: clf.classify("今天比赛", LABELS, template="这是{label"), UsageError,
         "unbalanced braces?"),
    case("template-unbalanced-close", lambda clf: clf.classify("今天比赛", LABELS, template="label}新闻"), UsageError,
         "unbalanced braces?"),
    case("template-list-one-bad", lambda clf: clf.classify("今天比赛", LABELS, template=["{label}", "{x}"]), UsageError,
         "template '{x}': placeholder {x} is not allowed"),
    case("template-empty-list", lambda clf: clf.classify("今天比赛", LABELS, template=[]), UsageError,
         "no template given"),
    case("template-not-string", lambda clf: clf.classify("今天比赛", LABELS, template=[None]), UsageError,
         "template[0]: Input should be a valid string, got None"),
    case("placement-typo", lambda clf: clf.classify("今天比赛", LABELS, placement="prefx"), UsageError,
         "placement must be 'prefix'"),
    case("threshold-above-1", lambda clf: clf.classify("今天比赛", LABELS, multi_label=True, threshold=1.5),
         UsageError, "threshold must be a probability between 0 and 1, got 1.5"),
    case("threshold-negative", lambda clf: clf.classify("今天比赛", LABELS, multi_label=True, threshold=-0.1),
         UsageError, "threshold must be a probability between 0 and 1, got -0.1"),
    case("threshold-nan", lambda clf: clf.classify("今天比赛", LABELS, multi_label=True, threshold=float("nan")),
         UsageError, "got nan"),
    case("threshold-string", lambda clf: clf.classify("今天比赛", LABELS, multi_label=True, threshold="0.5"),
         UsageError, "got '0.5'"),
    case("classify-nul-text", lambda clf: clf.classify(["今天", "\x00\x00"], LABELS), UsageError,
         "texts[1] is empty (nothing but whitespace or invisible characters)"),
    case("classify-zero-width-text", lambda clf: clf.classify("\u200b", LABELS), UsageError, "texts[0] is empty"),
]


@pytest.mark.parametrize("fn, exc, message", BAD_REQUESTS)
def test_a_bad_request_is_a_one_line_error_naming_what_is_wrong(clf, fn, exc, message):
    check_case(fn, clf, exc, message)


def test_a_wrong_value_is_shown_cut_the_one_way_however_big():
    """Messages show values through errors.shown: bounded, never a whole repr of megabytes."""
    from nspzero.errors import SHOWN_CHARS, shown

    value = ["x" * 10**6, {"k": "y" * 10**6}]
    with pytest.raises(UsageError) as exc:
        check_text(value, "texts[0]")
    assert str(exc.value) == f"texts[0] is list {shown(value)}, not a string"
    with pytest.raises(RequestError) as exc:
        ClassifyArgs.of(texts=["a"], labels=["a", "b"], top_k=value)
    assert str(exc.value) == f"top_k: Input should be a valid integer, got {shown(value)}"
    assert len(shown(value)) == SHOWN_CHARS


def test_the_python_door_takes_numpy_arrays_views_generators_and_numpy_numbers(clf):
    """What pandas' .unique(), dict.keys() or a generator hand over classifies as the same lists."""
    import numpy as np

    texts, labels = ["今天比赛球队赢了", "市场上涨"], ["体育", "财经", "科技"]
    expected = [r.to_dict() for r in clf.classify(texts, labels, top_k=2, threshold=0.25, overlap=4)]
    for t, ls in [(np.array(texts), np.array(labels, dtype=object)), (iter(texts), dict.fromkeys(labels).keys()),
                  (tuple(texts), (x for x in labels))]:
        got = clf.classify(t, ls, top_k=np.int64(2), threshold=np.float32(0.25), overlap=np.int32(4))
        assert [r.to_dict() for r in got] == expected
    per_text = clf.classify(texts, labels_per_text=[np.array(labels[:2]), (x for x in labels)])
    assert [r.to_dict() for r in per_text] == [r.to_dict() for r in clf.classify(
        texts, labels_per_text=[labels[:2], labels])]


@pytest.mark.parametrize("kwargs, field", [(dict(labels={"体育", "财经"}), "labels"),
                                           (dict(labels_per_text=[["体育", "财经"], frozenset({"好", "差"})]),
                                            "labels_per_text")])
def test_a_set_of_labels_is_refused_it_has_no_order(kwargs, field):
    with pytest.raises(RequestError, match=r"is a (frozen)?set, which has no order; pass a list \(e\.g\. sorted") as exc:
        ClassifyArgs.of(texts=["今天", "东西"], **kwargs)
    assert exc.value.field == field


BIG = "x" * 30_000


@pytest.mark.parametrize("make", [
    lambda: build_request(["a", "b"], template=BIG + "{bad}"),
    lambda: build_request(["a", "b"], template=BIG),
    lambda: build_request(["a", "b"], template="{label}" + BIG + "{"),
    lambda: build_request(["a", "b"], template="{" + BIG + "}"),
    lambda: build_request(["a", "b"], placement=BIG),
    lambda: build_request(prompt=BIG),
    lambda: build_request({"a": [BIG[:150], "w"], "b": ["w"]}),
    lambda: ClassifyArgs.of(texts=["t"], labels=["a", "b"], **{BIG: 1}),
    lambda: ClassifyArgs.of(texts=["t"], labels=["a", "b"], threshold=BIG),
])
def test_an_error_built_around_a_huge_input_is_one_short_line(make):
    """Class: messages that echo an input (template, placement, prompt name, label word, unknown field)."""
    with pytest.raises(UsageError) as caught:
        make()
    text = str(caught.value)
    assert len(text) < 600 and "\n" not in text and "x" * 200 not in text, text[:300]
    assert getattr(caught.value, "field", None) is None or len(caught.value.field) <= 40


# ---- one candidate label without multi_label ----------------------------------------------------------
def test_one_label_without_multi_label_is_answered_with_its_own_p_isnext(clf, reference):
    """As transformers' zero-shot pipeline answers one candidate: the label is that label, its score is its
    P(IsNext) (transformers' BertForNextSentencePrediction, the reference), not a normalised 1.0; the
    same request through the CLI, the server and Ray is in `test_every_front_door_gives_the_python_answer`."""
    results = clf.classify(TEXTS, ["体育"], template="这是一则{label}新闻")
    for text, result in zip(TEXTS, results):
        assert result.label == "体育" and list(result.scores) == ["体育"]
        assert abs(result.scores["体育"] - reference("这是一则体育新闻", text, max_length=64)) <= 1e-5
    multi = clf.classify(TEXTS[0], ["体育"], template="这是一则{label}新闻", multi_label=True, threshold=1.0)
    assert multi.label == [] and multi.scores == pytest.approx(results[0].scores, abs=1e-6)
