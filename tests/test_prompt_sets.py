"""Prompt sets: every shipped set is valid; user sets are read strictly (file:line: field errors)."""
from __future__ import annotations

import pytest

from nspzero.errors import UsageError
from nspzero.prompt_sets import list_prompt_sets, load_prompt, load_prompt_set, prompt_family
from nspzero.yamlcheck import read_yaml
from bad_input import GBK, PROMPT_OK, Files, case, check_case

BASE = 'name: mine\nwords:\n  2022: {pos: 好, 1: 差}\nvariants:\n  v: {template: ["这是{label}", "{label}"], words: "2022"}\n'


def _write(tmp_path, text) -> str:
    path = tmp_path / "set.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def test_every_shipped_prompt_set_loads():
    for name in list_prompt_sets():
        variants = load_prompt_set(name)
        assert variants[""].prompt_set == name


def test_numbers_as_vocabulary_names_and_labels(tmp_path):
    variant = load_prompt(_write(tmp_path, BASE))
    assert variant.words == {"pos": ("好",), "1": ("差",)} and variant.templates == ("这是{label}", "{label}")


def test_errors_name_the_line_of_the_field(tmp_path):
    path = _write(tmp_path, BASE.replace("pos: 好", "pos: [好, 5]"))
    with pytest.raises(UsageError, match=rf"^{path}:3: field 'words.2022.pos' must be a string, got int 5$"):
        load_prompt(path)


def test_duplicate_keys_are_refused(tmp_path):
    with pytest.raises(UsageError, match=r"set.yaml:6: key 'name' appears twice in one mapping \(the first is on line 1\)"):
        load_prompt(_write(tmp_path, BASE + "name: again\n"))


def test_python_tags_never_run(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(UsageError, match="not allowed"):
        load_prompt(_write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n"))
    assert not marker.exists()


def test_read_yaml_remembers_key_lines():
    data = read_yaml("a: 1\nb:\n  c: 2\n", "x.yaml")
    assert data == {"a": 1, "b": {"c": 2}} and data.lines == {"a": 1, "b": 2} and data["b"].lines == {"c": 3}


def test_english_prompts_follow_method_md():
    assert load_prompt("sst2").templates == ("A {label} piece of work",)
    assert load_prompt("sst2").words == {"0": ("terrible",), "1": ("great",)}
    assert load_prompt("subj").templates == ("A {label} comment",)
    assert load_prompt("mpqa").templates == ("It is {label}",)
    assert load_prompt("agnews").words["3"] == ("technology",) and load_prompt("agnews").templates == ("A {label} news :",)
    assert len(load_prompt("yahoo").words) == 10 and load_prompt("yahoo").templates == ("{label} question :",)
    for name in ("trec", "dbpedia", "imdb", "amazon", "cr", "mr"):
        assert load_prompt(name).words


def test_prompt_family_has_variants_and_ensembles():
    family = {v.name: v for v in prompt_family(load_prompt("tnews"))}
    assert {"news-2022", "labelnews-2022", "label-2022", "ensemble-mean", "ensemble-logmean"} == set(family)
    assert len(family["ensemble-mean"].templates) == 3 and family["ensemble-logmean"].combine == "logmean"


def test_the_same_word_under_two_labels_is_refused_naming_both(tmp_path):
    path = _write(tmp_path, BASE.replace("1: 差", "1: [差, 好]"))
    with pytest.raises(UsageError, match=rf"^{path}:3: field 'words.2022': labels 'pos' and '1' share the word '好', "
                                         rf"so they tie on it; give each label its own words$"):
        load_prompt(path)
    path = _write(tmp_path, BASE.replace("1: 差", "ｐｏｓ: 差"))
    with pytest.raises(UsageError, match=rf"^{path}:3: field 'words.2022': labels 'pos' and 'ｐｏｓ' differ only"):
        load_prompt(path)


def test_a_billion_laughs_prompt_file_is_refused_at_once(tmp_path):
    from test_yamlcheck import LAUGHS

    with pytest.raises(UsageError, match="expand to more than 1,000,000 values"):
        load_prompt(_write(tmp_path, LAUGHS))


def _prompt(e: Files, text):
    return load_prompt(e.file("set.yaml", text))


BAD_INPUT = [
    case("prompt-name-traversal", lambda e: _prompt(e, PROMPT_OK.replace("name: mine", "name: ../x")), UsageError,
         "set.yaml:1: field 'name' must be a name"),
    case("prompt-template-number", lambda e: _prompt(e, PROMPT_OK.replace('"这是{label}"', "5")), UsageError,
         "set.yaml:5: field 'variants.v.template' must be a template string or a list of them, got int 5"),
    case("prompt-template-list-number", lambda e: _prompt(e, PROMPT_OK.replace('"这是{label}"', '["{label}", 5]')),
         UsageError, "must be a string, got int 5"),
    case("prompt-template-empty-list", lambda e: _prompt(e, PROMPT_OK.replace('"这是{label}"', "[]")), UsageError,
         "at least one template"),
    case("prompt-words-list", lambda e: _prompt(e, PROMPT_OK.replace("  w: {pos: 好, neg: 差}", "  - 好")),
         UsageError, "field 'words' must be a mapping"),
    case("prompt-vocab-list", lambda e: _prompt(e, PROMPT_OK.replace("{pos: 好, neg: 差}", "[好, 差]")), UsageError,
         "set.yaml:3: field 'words.w' must be a mapping"),
    case("prompt-word-number", lambda e: _prompt(e, PROMPT_OK.replace("pos: 好", "pos: 5")), UsageError,
         "field 'words.w.pos' must be a string, got int 5"),
    case("prompt-word-empty-list", lambda e: _prompt(e, PROMPT_OK.replace("pos: 好", "pos: []")), UsageError,
         "must give at least one word"),
    case("prompt-word-dict", lambda e: _prompt(e, PROMPT_OK.replace("pos: 好", "pos: {a: b}")), UsageError,
         "must be a string, got mapping"),
    case("prompt-label-bool", lambda e: _prompt(e, PROMPT_OK.replace("pos: 好", "yes: 好")), UsageError,
         "must hold labels (strings or integers), got bool"),
    case("prompt-vocab-unknown", lambda e: _prompt(e, PROMPT_OK.replace("words: w}", "words: x}")), UsageError,
         "field 'variants.v.words': no vocabulary 'x'"),
    case("prompt-variant-unknown-key", lambda e: _prompt(e, PROMPT_OK.replace("template:", "temlate:")), UsageError,
         "field 'variants.v.temlate' is not a variant field"),
    case("prompt-combine-unknown", lambda e: _prompt(e, PROMPT_OK.replace("words: w}", "words: w, combine: max}")),
         UsageError, "field 'variants.v.combine' must be one of"),
    case("prompt-placement-typo", lambda e: _prompt(e, "placement: prefx\n" + PROMPT_OK), UsageError,
         "set.yaml:1: field 'placement' must be one of prefix, suffix"),
    case("prompt-default-missing", lambda e: _prompt(e, "default: w2\n" + PROMPT_OK), UsageError,
         "'w2' is not one of its variants"),
    case("prompt-variant-name-traversal", lambda e: _prompt(e, PROMPT_OK.replace("  v: {", '  "../v": {')), UsageError,
         "field 'variants.../v' must be a name"),
    case("prompt-variant-name-number", lambda e: _prompt(e, PROMPT_OK.replace("  v: {", "  5: {")), UsageError,
         "must be a string, got int 5"),
    case("prompt-pair-first-number", lambda e: _prompt(e, "name: p\nvariants:\n  v: {first: 5, second: '{x}'}\n"),
         UsageError, "field 'variants.v.first' must be a string, got int 5"),
    case("prompt-set-unknown-field", lambda e: _prompt(e, PROMPT_OK + "colour: red\n"), UsageError,
         "set.yaml:6: field 'colour' is not a prompt-set field"),
    case("prompt-duplicate-key", lambda e: _prompt(e, PROMPT_OK + "name: again\n"), UsageError, "appears twice"),
    case("prompt-yaml-tag", lambda e: _prompt(e, "name: !!python/object/apply:os.system ['true']\n"), UsageError,
         "set.yaml:1: invalid YAML"),
    case("prompt-not-utf8", lambda e: _prompt(e, b"name: " + GBK + b"\n"), UsageError, "set.yaml:1: not UTF-8"),
    case("prompt-description-number", lambda e: _prompt(e, "description: 5\n" + PROMPT_OK), UsageError,
         "field 'description' must be a string"),
    case("prompt-template-without-words", lambda e: _prompt(e, PROMPT_OK.replace(", words: w}", "}")), UsageError,
         "a label prompt needs 'words'"),
    case("prompt-pair-with-words", lambda e: _prompt(e, PROMPT_OK + "  p: {first: a, second: b, words: w}\n"),
         UsageError, "belongs to label prompts"),
    case("prompt-variants-empty", lambda e: _prompt(e, "name: p\nvariants: {}\n"), UsageError,
         "field 'variants' must map variant names"),
    case("prompt-top-level-string", lambda e: _prompt(e, "just text\n"), UsageError, "expected a mapping"),
    case("prompt-syntax", lambda e: _prompt(e, "name: mine\nvariants: {v: [\n"), UsageError, "invalid YAML"),
]


@pytest.mark.parametrize("fn, exc, message", BAD_INPUT)
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, fn, exc, message):
    """Prompt-set YAML: file:line and the field in every message."""
    check_case(fn, Files(tmp_path, monkeypatch), exc, message)
