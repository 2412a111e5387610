"""The task registry: shipped tasks load; user task YAML is read strictly (file:line: field errors)."""
from __future__ import annotations

import pytest

from nspzero.errors import UsageError
from nspzero.tasks.registry import (check_distinct_names, load_config, load_task, parse_config, resolve_task_list,
                                    task_names)
from nspzero.yamlcheck import read_yaml

BASE = "name: mine\ntype: classification\nprompt: tnews\nfields: {text: sentence, label: label_desc}\n"


def _write(tmp_path, text: str, name: str = "mine.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_every_shipped_task_loads_with_its_metrics():
    many_labels = {"tnews", "iflytek", "csldcp"}  # macro-F1 as an extra column where classes are many
    for name in task_names():
        task = load_task(name)
        expected = ("accuracy", "macro_f1") if name in many_labels else ("accuracy",)
        assert task.config.name == name and task.metrics == expected


def test_metric_one_name_or_a_list(tmp_path):
    assert load_task(_write(tmp_path, BASE + "metric: macro_f1\n")).metrics == ("macro_f1",)
    assert load_task(_write(tmp_path, BASE + "metric: [accuracy, macro_f1]\n")).metrics == ("accuracy", "macro_f1")


def test_labels_written_as_numbers_become_strings(tmp_path):
    text = "name: p\ntype: pair\nprompt: bustm\nfields: {sentence1: a, sentence2: b, label: label}\nlabel_order: [0, 1]\n"
    assert load_config(_write(tmp_path, text)).label_order == ("0", "1")


def test_soft_positions_false_is_kept():
    config = parse_config(read_yaml("name: c\ntype: cloze\nprompt: chid\nfields: {content: c, candidates: k, answer: a}\n"
                                    "soft_positions: false\n", "c.yaml"), "c.yaml")
    assert config.soft_positions is False


def test_errors_name_file_line_and_field(tmp_path):
    path = _write(tmp_path, BASE + "soft_positions: 'no'\n")
    with pytest.raises(UsageError, match=rf"^{path}:5: field 'soft_positions' must be true or false, got str 'no'$"):
        load_task(path)


def test_yaml_booleans_are_not_names(tmp_path):
    with pytest.raises(UsageError, match="field 'name' must be a string, got bool"):
        load_task(_write(tmp_path, BASE.replace("name: mine", "name: yes")))


def test_distinct_names(tmp_path):
    other = _write(tmp_path, BASE.replace("name: mine", "name: tnews"))
    with pytest.raises(UsageError, match=r"two tasks are named 'tnews' \(eval/tasks/tnews.yaml and .*mine.yaml\)"):
        resolve_task_list(f"tnews,{other}")
    check_distinct_names([load_config("tnews"), load_config("ocnli")])
    assert resolve_task_list(f"ocnli,{other}") == ["ocnli", other]


def test_name_is_safe_for_file_names(tmp_path):
    for bad in ("../../x", "a/b", ".hidden", "-x", "a" * 65, "'a b'"):
        with pytest.raises(UsageError, match="field 'name'"):
            load_task(_write(tmp_path, BASE.replace("name: mine", f"name: {bad}")))
