"""FewCLUE-shaped data for the tests: small folders they write, and real rows shipped in tests/fixtures."""
from __future__ import annotations

import json
from pathlib import Path

TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "老师学生上学校", "电脑游戏玩家",
         "手机很好不错", "我们今天买了东西", "国际比赛", "它是电竞游戏", "房产市场上涨"]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_fewclue(root: Path, n: int = 8) -> Path:
    """eprstmt (C-C), tnews (C-C, label_desc), ocnli (S-C, 3 labels), csl (list field), chid (cloze),
    cluewsc (coref, nested fields): test_public, dev_few_all and train_few_all (the split `eval --few-shot`
    tunes on) splits of `n` examples each."""
    idioms = ["严阵以待", "改朝换代", "不共戴天", "天南海北", "物归原主", "波谲云诡", "高视阔步"]
    tnews_labels = ["news_sports", "news_finance", "news_tech", "news_edu"]
    nli = ["contradiction", "neutral", "entailment"]
    for split in ("test_public", "dev_few_all", "train_few_all"):
        _write(root / "eprstmt" / f"{split}.json", [
            {"id": i, "sentence": TEXTS[i % 10], "label": ["Positive", "Negative"][i % 2]} for i in range(n)])
        _write(root / "tnews" / f"{split}.json", [
            {"label": 103, "label_desc": tnews_labels[i % 4], "sentence": TEXTS[i % 10], "id": i} for i in range(n)])
        _write(root / "ocnli" / f"{split}.json", [
            {"sentence1": TEXTS[i % 10], "sentence2": TEXTS[(i + 3) % 10], "label": nli[i % 3], "id": i}
            for i in range(n)])
        _write(root / "csl" / f"{split}.json", [
            {"id": i, "abst": TEXTS[i % 10] * 3, "keyword": ["比赛", "手机"], "label": str(i % 2)} for i in range(n)])
        _write(root / "chid" / f"{split}.json", [
            {"id": i, "candidates": idioms, "content": TEXTS[i % 10][:3] + "#idiom#" + TEXTS[i % 10][3:],
             "answer": i % 7} for i in range(n)])
        _write(root / "cluewsc" / f"{split}.json", [
            {"target": {"span2_index": 5, "span1_index": 0, "span1_text": "老师", "span2_text": "他"},
             "idx": i, "label": ["true", "false"][i % 2], "text": "老师" + TEXTS[i % 10] + "他"} for i in range(n)])
    return root


FIXTURES = Path(__file__).resolve().parent / "fixtures"
FEWCLUE = FIXTURES / "fewclue"   # 20 real rows per split of all nine tasks (tests/fixtures/make_fewclue_fixture.py)
VOCAB_DIR = FIXTURES / "vocab"   # the parts of bert-base-chinese/-uncased's vocabularies the tests' texts use
