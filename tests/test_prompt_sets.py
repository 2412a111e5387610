"""Prompt sets: every shipped set is valid; user sets are read strictly (file:line: field errors)."""
from __future__ import annotations

import pytest

from nspzero.errors import UsageError
from nspzero.prompt_sets import list_prompt_sets, load_prompt, load_prompt_set, prompt_family
from nspzero.yamlcheck import read_yaml

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
