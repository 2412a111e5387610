"""Issue 19's "done when": one request through every front door gives the Python API's scores
(|Δ| ≤ 1e-5, per text and label): `NSPClassifier.classify`, `nspzero classify` (JSON), the server's
own body and the Hugging Face zero-shot payload, `--engine ray`, the web page in Chromium, and
`nspzero eval` of an equivalent task.

The request reads its long text in windows (`long_text="chunk"`); the zero-shot payload and task
configs have no way to say so, so those two doors are held to the same request read the paper's
way (truncated), and the two references are checked to differ on the long text, so that a door
which drops `long_text` cannot pass.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from browser_fixture import serve_app  # noqa: E402
from conftest import run_cli  # noqa: E402
from test_web import browser, classify, page, shown  # noqa: E402,F401 (fixtures; `page` loads this module's server)

SENTENCES = ["今天比赛球队赢了", "市场上涨公司发布手机", "学校老师学生上文", "电竞玩家游戏很好", "汽车房产旅游不错",
             "国际农业股票上涨", "他们买了电脑软件", "一二三四五六七八", "体育财经娱乐新闻", "故事文化很好"]
LONG = "。".join(SENTENCES) + "。"  # about 100 tokens: read in several windows at max_length 64
TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机", LONG]
LABELS = ["体育", "财经", "科技"]
TEMPLATE = "这是一则{label}新闻"
MAX_LENGTH = 64
MODEL_OPTIONS = ["--max-length", str(MAX_LENGTH), "--batch-size", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def clf(decisive_model_dir):
    """A tiny model whose scores spread (the plain one scores every pair within 1e-5 of 0.4935)."""
    from nspzero import NSPClassifier

    return NSPClassifier.from_pretrained(decisive_model_dir, device="cpu", max_length=MAX_LENGTH, batch_size=4)


@pytest.fixture(scope="module")
def want(clf):
    """The Python door, the reference: the request as asked (windows), and read truncated."""
    chunk = clf.classify(TEXTS, LABELS, template=TEMPLATE, long_text="chunk")
    cut = clf.classify(TEXTS, LABELS, template=TEMPLATE)
    return {"chunk": [r.scores for r in chunk], "truncate": [r.scores for r in cut]}


@pytest.fixture(scope="module")
def server(clf):
    """The app on the reference's own classifier, served by uvicorn (for httpx and Chromium)."""
    from nspzero.serve import create_app

    with serve_app(create_app(clf)) as url:
        yield url


def assert_same(got: list[dict], expected: list[dict], door: str) -> None:
    assert len(got) == len(expected), door
    for i, (g, e) in enumerate(zip(got, expected)):
        assert set(g) == set(e), (door, i, g)
        worst = max(abs(float(g[k]) - e[k]) for k in e)
        assert worst <= 1e-5, f"{door}: text {i} differs by {worst:.2e}: {g} vs {e}"


def test_the_two_references_differ_on_the_long_text_only(want):
    assert_same(want["chunk"][:2], want["truncate"][:2], "short texts")
    assert max(abs(want["chunk"][2][k] - want["truncate"][2][k]) for k in LABELS) > 1e-4


def test_cli_json_output(decisive_model_dir, want, capsys):
    code, out, err = run_cli(["classify", *TEXTS, "--model", decisive_model_dir, "--labels", ",".join(LABELS),
                              "--template", TEMPLATE, "--long-text", "chunk", "--format", "json", *MODEL_OPTIONS],
                             capsys)
    assert code == 0, err
    assert_same([r["scores"] for r in json.loads(out)], want["chunk"], "nspzero classify")


def test_server_body_and_hugging_face_payload(server, clf, want):
    body = httpx.post(f"{server}/classify", json={"texts": TEXTS, "labels": LABELS, "template": TEMPLATE,
                                                  "long_text": "chunk"}, timeout=60)
    assert body.status_code == 200, body.text
    assert_same([r["scores"] for r in body.json()["results"]], want["chunk"], "POST /classify")
    zero_shot = {"candidate_labels": LABELS, "hypothesis_template": TEMPLATE.replace("{label}", "{}")}
    hf = httpx.post(f"{server}/", json={"inputs": TEXTS, "parameters": zero_shot}, timeout=60)
    assert hf.status_code == 200, hf.text
    for door, answers in (("POST / (zero-shot)", hf.json()), ("NSPClassifier.__call__", clf(TEXTS, **zero_shot))):
        assert [a["sequence"] for a in answers] == TEXTS, door
        assert_same([dict(zip(a["labels"], a["scores"])) for a in answers], want["truncate"], door)


def test_web_page(page, want):
    """One page load: the texts typed one per line, windows chosen in the form."""
    page.get_by_test_id("text").fill("\n".join(TEXTS))
    page.get_by_test_id("labels").fill(", ".join(LABELS))
    page.get_by_test_id("template").fill(TEMPLATE)
    page.get_by_test_id("long-text").select_option("chunk")
    classify(page)
    assert page.get_by_test_id("error").is_hidden(), page.get_by_test_id("error").inner_text()
    assert_same([{label: float(score) for label, score in rows} for rows, _ in shown(page)], want["chunk"], "page")


def test_ray_engine(decisive_model_dir, want, tmp_path, capsys):
    pytest.importorskip("ray")
    from test_distributed import _bounded  # a stalled Ray job fails the test instead of hanging the suite

    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    from nspzero.distributed.common import private_ray  # never plain ray.init(): it joins a stale cluster

    with private_ray(num_cpus=2):
        code, _, err = _bounded(run_cli, ["classify", "--engine", "ray", "--input", str(source), "--output", str(out),
                                          "--model", decisive_model_dir, "--labels", ",".join(LABELS), "--template",
                                          TEMPLATE, "--long-text", "chunk", *MODEL_OPTIONS], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    assert_same([r["scores"] for r in rows], want["chunk"], "--engine ray")


def test_eval_of_the_same_task(decisive_model_dir, want, tmp_path, capsys):
    """A task config of one's own: its prompt file holds the labels and the template."""
    data = tmp_path / "data" / "doors"
    data.mkdir(parents=True)
    data.joinpath("test_public.json").write_text("".join(
        json.dumps({"text": t, "label": LABELS[i]}, ensure_ascii=False) + "\n" for i, t in enumerate(TEXTS)),
        encoding="utf-8")
    prompt = tmp_path / "doors-prompt.yaml"
    prompt.write_text(f"name: doors\nwords:\n  names: {{{', '.join(f'{x}: {x}' for x in LABELS)}}}\n"
                      f"variants:\n  news: {{template: \"{TEMPLATE}\", words: names}}\n", encoding="utf-8")
    task = tmp_path / "doors.yaml"
    task.write_text(f"name: doors\ntype: classification\nfields: {{text: text, label: label}}\nprompt: {prompt}\n",
                    encoding="utf-8")
    code, _, err = run_cli(["eval", "--data-dir", str(tmp_path / "data"), "--tasks", str(task), "--output-dir",
                            str(tmp_path / "out"), "--model", decisive_model_dir, *MODEL_OPTIONS], capsys)
    assert code == 0, err
    predictions = Path(tmp_path, "out", "doors.predictions.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in predictions.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert_same([r["scores"] for r in rows], want["truncate"], "nspzero eval")
