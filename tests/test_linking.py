"""Entity linking: the candidates-contrast path with one pair per candidate entity (API and CLI)."""
import json

import numpy as np
import pytest

from nspzero.errors import UsageError


def test_link_picks_the_best_description(clf):
    result = clf.link("我买的手机", {"a": "手机", "b": "电脑游戏", "c": "今天比赛"})
    expected = clf.score_pairs(["我买的手机"] * 3, ["手机", "电脑游戏", "今天比赛"])
    assert result.scores == pytest.approx(dict(zip("abc", expected)), abs=1e-6)
    assert result.entity == "abc"[int(np.argmax(expected))]
    many = clf.link(["我买的手机", "今天比赛"], [[("x", "手机"), ("y", "比赛")], [{"id": "z", "description": "球队"}]])
    first = clf.score_pairs(["我买的手机"] * 2, ["手机", "比赛"])
    assert many[0].scores == pytest.approx({"x": first[0], "y": first[1]}, abs=1e-6)
    assert many[0].entity == "xy"[int(np.argmax(first))] and many[1].entity == "z"
    with pytest.raises(UsageError, match="given twice"):
        clf.link("x", [("a", "手机"), ("a", "电脑")])
    with pytest.raises(UsageError, match="empty description"):
        clf.link("x", {"a": ""})


def test_link_cli_on_jsonl(model_dir, clf, tmp_path, capsys):
    """The CLI gives each mention the API's scores, its best entity, and carries the record's other fields."""
    from nspzero.cli import main

    descriptions = {"Q1": "手机", "Q2": "比赛", "Q3": "电脑游戏"}
    src = tmp_path / "mentions.jsonl"
    src.write_text(json.dumps({"text": "我买的手机", "mid": 7, "candidates": [{"id": k, "description": v}
                                                                            for k, v in descriptions.items()]},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        main(["link", "-m", model_dir, "-i", str(src)])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    row = json.loads(capsys.readouterr().out)
    expected = dict(zip(descriptions, clf.score_pairs(["我买的手机"] * 3, list(descriptions.values()))))
    assert row["scores"] == pytest.approx(expected, abs=1e-5)
    assert row["entity"] == max(expected, key=expected.get) and row["mid"] == 7
