"""The task registry: shipped tasks load; user task YAML is read strictly (file:line: field errors)."""
from __future__ import annotations

import pytest

from nspzero.errors import UsageError
from nspzero.tasks.registry import (check_distinct_names, load_config, load_task, parse_config, resolve_task_list,
                                    task_names)
from nspzero.yamlcheck import read_yaml
from bad_input import GBK, TASK_OK, Files, case, check_case, task_line

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


def _task(e: Files, text, name: str = "task.yaml"):
    return load_task(e.file(name, text))


def _resolve(e: Files, spec: str):
    return resolve_task_list(spec.replace("@tmp", str(e.tmp)))


BAD_INPUT = [
    case("task-unknown", lambda e: load_task("tnewz"), UsageError, "unknown task 'tnewz'; did you mean 'tnews'?"),
    case("task-unknown-case", lambda e: load_task("OCNLI"), UsageError, "did you mean 'ocnli'?"),
    case("task-file-missing", lambda e: load_task(str(e.tmp / "mine.yaml")), UsageError, "does not exist"),
    case("task-prompt-unknown", lambda e: load_task("tnews", prompt="tnewz"), UsageError,
         "unknown prompt set 'tnewz'; did you mean 'tnews'?"),
    case("task-prompt-variant-unknown", lambda e: load_task("tnews", prompt=":news-2020"), UsageError,
         "prompt set 'tnews' has no variant 'news-2020'; did you mean"),
    case("task-name-traversal", lambda e: _task(e, task_line("name", "../../x")), UsageError,
         "task.yaml:4: field 'name' must be a name of letters"),
    case("task-name-list", lambda e: _task(e, task_line("name", "[a]")), UsageError,
         "field 'name' must be a string, got list"),
    case("task-name-number", lambda e: _task(e, task_line("name", "5")), UsageError, "got int 5"),
    case("task-name-slash", lambda e: _task(e, task_line("name", "a/b")), UsageError, "field 'name'"),
    case("task-name-dots", lambda e: _task(e, task_line("name", "..")), UsageError, "field 'name'"),
    case("task-prompt-number", lambda e: _task(e, task_line("prompt", "5")), UsageError,
         "field 'prompt' must be a string, got int 5"),
    case("task-prompt-unknown-set", lambda e: _task(e, task_line("prompt", "tnewz")), UsageError,
         "field 'prompt': unknown prompt set 'tnewz'"),
    case("task-soft-positions-string", lambda e: _task(e, task_line("soft_positions", "'no'")), UsageError,
         "field 'soft_positions' must be true or false, got str 'no'"),
    case("task-soft-positions-int", lambda e: _task(e, task_line("soft_positions", "1")), UsageError,
         "must be true or false, got int 1"),
    case("task-soft-positions-arg", lambda e: load_task("chid", soft_positions="no"), UsageError,
         "soft_positions must be true or false"),
    case("task-type-typo", lambda e: _task(e, task_line("type", "clasification")), UsageError,
         "field 'type' must be one of classification"),
    case("task-fields-list", lambda e: _task(e, task_line("fields", "[text, label]")), UsageError,
         "field 'fields' must be a mapping"),
    case("task-field-path-number", lambda e: _task(e, task_line("fields", "{text: 5, label: label}")), UsageError,
         "field 'fields.text' must be a string, got int 5"),
    case("task-label-order-bools", lambda e: _task(e, task_line("label_order", "[true, false]")), UsageError,
         "field 'label_order' must hold labels (strings or integers), got bool"),
    case("task-label-order-string", lambda e: _task(e, task_line("label_order", "a,b")), UsageError,
         "field 'label_order' must be a list"),
    case("task-label-order-duplicate", lambda e: _task(e, task_line("label_order", "[a, a]")), UsageError,
         "lists a label twice"),
    case("task-reference-string", lambda e: _task(e, task_line("reference", "51%")), UsageError,
         "field 'reference' must be a number"),
    case("task-reference-bool", lambda e: _task(e, task_line("reference", "yes")), UsageError,
         "field 'reference' must be a number, got bool"),
    case("task-reference-range", lambda e: _task(e, task_line("reference", "510")), UsageError, "0-100"),
    case("task-metric-unknown", lambda e: _task(e, task_line("metric", "f1")), UsageError,
         "field 'metric' must be one of accuracy, macro_f1, got 'f1'"),
    case("task-metric-empty", lambda e: _task(e, task_line("metric", "[]")), UsageError, "at least one metric"),
    case("task-metric-twice", lambda e: _task(e, task_line("metric", "[accuracy, accuracy]")), UsageError,
         "lists a metric twice"),
    case("task-metric-number", lambda e: _task(e, task_line("metric", "1")), UsageError, "field 'metric' must be"),
    case("task-data-traversal", lambda e: _task(e, task_line("data", "../../etc")), UsageError,
         "field 'data' must be a folder under the data dir"),
    case("task-data-absolute", lambda e: _task(e, task_line("data", "/etc")), UsageError, "field 'data'"),
    case("task-split-traversal", lambda e: _task(e, task_line("test_split", "../x")), UsageError,
         "field 'test_split' must be a name"),
    case("task-join-number", lambda e: _task(e, task_line("join", "5")), UsageError, "field 'join' must be a string"),
    case("task-blank-empty", lambda e: _task(e, task_line("blank", "''")), UsageError, "field 'blank' must not be empty"),
    case("task-description-list", lambda e: _task(e, task_line("description", "[a]")), UsageError,
         "field 'description' must be a string"),
    case("task-unknown-field", lambda e: _task(e, task_line("colour", "red")), UsageError,
         "task.yaml:5: field 'colour' is not a task field"),
    case("task-duplicate-key", lambda e: _task(e, TASK_OK + "name: other\n"), UsageError,
         "task.yaml:5: key 'name' appears twice"),
    case("task-yaml-syntax", lambda e: _task(e, "name: [mine\ntype: pair\n"), UsageError, "task.yaml:2: invalid YAML"),
    case("task-yaml-python-tag", lambda e: _task(e, "name: !!python/object/apply:os.system ['true']\n"), UsageError,
         "task.yaml:1: invalid YAML (could not determine a constructor"),
    case("task-yaml-python-name-tag", lambda e: _task(e, TASK_OK + "x: !!python/name:os.system\n"), UsageError,
         "not allowed"),
    case("task-yaml-custom-tag", lambda e: _task(e, "name: !secret x\n"), UsageError, "invalid YAML"),
    case("task-not-utf8", lambda e: _task(e, TASK_OK.encode() + b"description: " + GBK + b"\n"), UsageError,
         "task.yaml:5: not UTF-8"),
    case("task-top-level-list", lambda e: _task(e, "- a\n- b\n"), UsageError, "expected a mapping at the top level"),
    case("task-empty-file", lambda e: _task(e, ""), UsageError, "expected a mapping at the top level"),
    case("task-deep-nesting", lambda e: _task(e, "name: " + "[" * 20000), UsageError, "invalid YAML"),
    case("task-duplicate-names", lambda e: (e.file("t.yaml", task_line("name", "tnews")), _resolve(e, "tnews,@tmp/t.yaml")),
         UsageError, "two tasks are named 'tnews'"),
    case("task-prompt-arg-number", lambda e: load_task("tnews", prompt=5), UsageError,
         "prompt must be a prompt-set name"),
    case("task-fields-empty", lambda e: _task(e, task_line("fields", "{}")), UsageError,
         "field 'fields' must map roles"),
    case("task-field-role-traversal", lambda e: _task(e, task_line("fields", "{../x: a, label: b}")), UsageError,
         "field 'fields.../x' must be a name"),
    case("task-type-missing", lambda e: _task(e, TASK_OK.replace("type: classification\n", "")), UsageError,
         "field 'type' is missing"),
    case("task-label-order-floats", lambda e: _task(e, task_line("label_order", "[0.5, 1]")), UsageError,
         "got float 0.5"),
]


@pytest.mark.parametrize("fn, exc, message", BAD_INPUT)
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, fn, exc, message):
    """Task names and task YAML: file:line and the field in every message."""
    check_case(fn, Files(tmp_path, monkeypatch), exc, message)


@pytest.mark.parametrize("few_shot, message", [({"batch_size": 0}, "few_shot.batch_size"),
                                               ({"lr": 1e-5}, "few_shot.lr: extra inputs"),
                                               ({"learning_rate": "fast"}, "few_shot.learning_rate"),
                                               ("8", "few_shot"),
                                               ({"pair": True}, "applies to classification tasks, not pair")])
def test_a_bad_few_shot_recipe_is_one_line_naming_the_field(few_shot, message):
    from nspzero.tasks.registry import parse_config

    kind = "pair" if isinstance(few_shot, dict) and "pair" in few_shot else "classification"
    data = {"name": "x", "type": kind, "prompt": "eprstmt", "fields": {"text": "a", "label": "b"},
            "few_shot": few_shot}
    with pytest.raises(UsageError, match=message) as info:
        parse_config(data, "x.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("x.yaml")
