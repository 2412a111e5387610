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
