"""label_files.py: --labels-file in .txt, .json and .yaml/.yml; every mistake one UsageError naming
file:line (or the entry) and what to do."""
from __future__ import annotations

import json

import pytest

from nspzero.errors import UsageError
from nspzero.label_files import read_labels_file

from conftest import one_line

EXPECTED = {
    "体育": {"words": ("体育",), "descriptions": ()},
    "财经": {"words": ("财经", "股票"), "descriptions": ()},
    "科技": {"words": (), "descriptions": ("这是一则科技新闻。",)},
    "游戏": {"words": ("游戏", "电竞"), "descriptions": ("这是一则游戏新闻。",)},
}

TXT = "# name<TAB>words<TAB>description\n体育\n\n财经\t财经|股票\n科技\t\t这是一则科技新闻。\n  # indented comment\n" \
      "游戏\t游戏|电竞\t这是一则游戏新闻。\n"


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def fails(path, *needles):
    with pytest.raises(UsageError) as info:
        read_labels_file(path)
    return one_line(info, *needles)


# --- what each format reads ------------------------------------------------------------------

def test_txt_all_line_forms(tmp_path):
    labels = read_labels_file(write(tmp_path, "labels.txt", TXT))
    assert labels == EXPECTED and list(labels) == list(EXPECTED)


def test_txt_bom_crlf_and_trailing_whitespace(tmp_path):
    content = "\ufeff" + TXT.replace("\n", "\r\n").replace("体育\r\n", "体育 \t \r\n").replace("财经\t", " 财经 \t ")
    assert read_labels_file(write(tmp_path, "labels.TXT", content)) == EXPECTED


def test_txt_keeps_hashes_and_spaces_inside_fields(tmp_path):
    labels = read_labels_file(write(tmp_path, "l.txt", "C#\tc sharp|C#\tA question about C#.\nnew york\n"))
    assert labels == {"C#": {"words": ("c sharp", "C#"), "descriptions": ("A question about C#.",)},
                      "new york": {"words": ("new york",), "descriptions": ()}}


JSON_FORMS = {
    "dict": {"体育": None, "财经": ["财经", "股票"], "科技": {"description": "这是一则科技新闻。"},
             "游戏": {"words": ["游戏", "电竞"], "description": "这是一则游戏新闻。"}},
    "objects": [{"name": "体育"}, {"name": "财经", "words": ["财经", "股票"]},
                {"name": "科技", "description": ["这是一则科技新闻。"]},
                {"name": "游戏", "words": ["游戏", "电竞"], "description": "这是一则游戏新闻。"}],
    "mixed": ["体育", {"name": "财经", "words": ["财经", "股票"]}, {"name": "科技", "description": "这是一则科技新闻。"},
              {"name": "游戏", "words": ["游戏", "电竞"], "description": ["这是一则游戏新闻。"]}],
}


@pytest.mark.parametrize("form", sorted(JSON_FORMS))
def test_json_forms(tmp_path, form):
    path = write(tmp_path, "labels.json", json.dumps(JSON_FORMS[form], ensure_ascii=False, indent=2))
    labels = read_labels_file(path)
    assert labels == EXPECTED and list(labels) == list(EXPECTED)


def test_json_list_of_names_word_strings_and_bom(tmp_path):
    assert read_labels_file(write(tmp_path, "a.json", '["体育", "财经", 7]')) == {
        "体育": {"words": ("体育",), "descriptions": ()}, "财经": {"words": ("财经",), "descriptions": ()},
        "7": {"words": ("7",), "descriptions": ()}}
    assert read_labels_file(write(tmp_path, "b.json", '\ufeff{"pos": "good", "neg": {"words": "bad"}}')) == {
        "pos": {"words": ("good",), "descriptions": ()}, "neg": {"words": ("bad",), "descriptions": ()}}


YAML_FORMS = {
    "dict": "体育:\n财经: [财经, 股票]\n科技:\n  description: 这是一则科技新闻。\n游戏:\n  words:\n    - 游戏\n    - 电竞\n"
            "  description: 这是一则游戏新闻。\n",
    "objects": "- name: 体育\n- name: 财经\n  words: [财经, 股票]\n- name: 科技\n  description: [这是一则科技新闻。]\n"
               "- {name: 游戏, words: [游戏, 电竞], description: 这是一则游戏新闻。}\n",
    "mixed": "# labels\n- 体育\n- name: 财经\n  words: [财经, 股票]\n- name: 科技\n  description: 这是一则科技新闻。\n"
             "- name: 游戏\n  words: [游戏, 电竞]\n  description: 这是一则游戏新闻。\n",
}


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
@pytest.mark.parametrize("form", sorted(YAML_FORMS))
def test_yaml_forms(tmp_path, form, suffix):
    labels = read_labels_file(write(tmp_path, "labels" + suffix, "\ufeff" + YAML_FORMS[form]))
    assert labels == EXPECTED and list(labels) == list(EXPECTED)


def test_yaml_integer_names_and_single_words(tmp_path):
    labels = read_labels_file(write(tmp_path, "l.yaml", "1: good\n2: [bad, awful]\n"))
    assert labels == {"1": {"words": ("good",), "descriptions": ()}, "2": {"words": ("bad", "awful"), "descriptions": ()}}


# --- errors ----------------------------------------------------------------------------------

def test_missing_file_and_folder(tmp_path):
    fails(str(tmp_path / "nope.txt"), "nope.txt: cannot read the labels file (No such file or directory); check the path")
    (tmp_path / "dir.json").mkdir()
    fails(str(tmp_path / "dir.json"), "dir.json: cannot read the labels file", "check the path")


@pytest.mark.parametrize("name, shown", [("labels.csv", "'.csv'"), ("labels", "'(no suffix)'"), ("l.jsonl", "'.jsonl'")])
def test_unknown_suffix(tmp_path, name, shown):
    message = fails(write(tmp_path, name, "体育\n"), f"{name}: unknown labels file type {shown}", ".txt", ".json",
                    ".yaml/.yml")
    assert "name<TAB>word1|word2" in message


@pytest.mark.parametrize("name", ["l.txt", "l.json", "l.yaml"])
def test_not_utf8(tmp_path, name):
    content = "体育\n财经\n".encode("utf-8") + "科技\n".encode("gbk") if name == "l.txt" else \
        b'["a",\n "b",\n "\xff"]' if name == "l.json" else b"- a\n- b\n- \xff\n"
    fails(write(tmp_path, name, content), f"{name}:3: not UTF-8 (byte 0x", "save the file as UTF-8")


@pytest.mark.parametrize("name, content", [
    ("l.txt", ""), ("l.txt", "# only comments\n\n  \n"), ("l.json", "[]"), ("l.json", " {} "),
    ("l.yaml", ""), ("l.yaml", "# nothing\n"), ("l.yml", "[]"), ("l.yaml", "{}"),
])
def test_no_labels(tmp_path, name, content):
    fails(write(tmp_path, name, content), f"{name}: no labels in it;")


def test_no_labels_txt_says_the_format(tmp_path):
    fails(write(tmp_path, "l.txt", "\n"), "one label per line (name, or name<TAB>word1|word2, or "
                                          "name<TAB>word1|word2<TAB>description)")


@pytest.mark.parametrize("name, content, message", [
    ("l.txt", "体育\n财经\n# x\n体育\t运动\n",
     "l.txt:4: label '体育' is given twice (first at line 1); keep one, with all its words and descriptions"),
    ("l.json", '{\n  "体育": "运动",\n  "财经": null,\n  "体育": "球"\n}',
     "l.json:4: label '体育' is given twice (first at line 2)"),
    ("l.json", '["体育",\n "财经",\n "体育"]', "l.json:3: label '体育' is given twice (first at line 1)"),
    ("l.json", '[{"name": "a"},\n {"name": "b"}, "a"]', "l.json:2: label 'a' is given twice (first at line 1)"),
    ("l.json", '{"1": "x", "2": "y"}', None),
    ("l.yaml", "- name: a\n- name: b\n- name: a\n  words: x\n", "l.yaml:3: label 'a' is given twice (first at line 1)"),
    ("l.yaml", "- a\n- b\n- a\n", "l.yaml: entry 3: label 'a' is given twice (first at entry 1)"),
    ("l.yaml", "- 1\n- '1'\n", "l.yaml: entry 2: label '1' is given twice (first at entry 1)"),
    ("l.yaml", "a: x\nb: y\na: z\n", "l.yaml:3: key 'a' appears twice in one mapping (the first is on line 1)"),
])
def test_duplicate_names_name_both_places(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    if message is None:
        assert list(read_labels_file(path)) == ["1", "2"]
    else:
        fails(path, message)


@pytest.mark.parametrize("name, content, needles", [
    ("l.txt", "体育\n\t运动\n", ("l.txt:2: the line starts with a tab, so the label has no name; put the name first",)),
    ("l.txt", "a\tx||y\n", ("l.txt:1: label 'a': words[1] is empty; write it or remove it",)),
    ("l.txt", "a\tx|\tdesc\n", ("l.txt:1: label 'a': words[1] is empty",)),
    ("l.txt", "a\tb\tc\td\n", ("l.txt:1: 4 tab-separated fields, at most 3", "a description cannot hold a tab")),
    ("l.txt", "体育 运动|球\n", ("l.txt:1: label name '体育 运动|球' holds '|'", "with a TAB, not spaces")),
    ("l.json", '{"": "x"}', ("l.json:1: a label is an empty string; every label needs a visible name",)),
    ("l.json", '[\n"a",\n"  "]', ("l.json:3: a label is an empty string",)),
    ("l.json", '{"a": ""}', ("l.json:1: label 'a': words is empty; write it or remove it",)),
    ("l.json", '{"a": ["x", " "]}', ("l.json:1: label 'a': words[1] is empty",)),
    ("l.json", '{"a": []}', ("l.json:1: label 'a': words is an empty list; give at least one, or leave it out",)),
    ("l.json", '[{"name": "a", "description": []}]', ("l.json:1: label 'a': description is an empty list",)),
    ("l.json", '[{"name": "a", "description": ""}]', ("l.json:1: label 'a': description is empty",)),
    ("l.yaml", "- name: ''\n", ("l.yaml:1: a label is an empty string",)),
    ("l.yaml", "a:\n  words: [x, '']\n", ("l.yaml:2: label 'a': words[1] is empty",)),
])
def test_empty_names_and_words(tmp_path, name, content, needles):
    fails(write(tmp_path, name, content), *needles)


def test_trailing_tabs_and_blanks_are_ignored(tmp_path):
    """Trailing blanks are invisible in an editor: "a<TAB> <TAB> " is the name alone."""
    assert read_labels_file(write(tmp_path, "l.txt", "a\t\t\nb\t \t \nc\t \tabout c\n")) == {
        "a": {"words": ("a",), "descriptions": ()}, "b": {"words": ("b",), "descriptions": ()},
        "c": {"words": (), "descriptions": ("about c",)}}


@pytest.mark.parametrize("name, content, needles", [
    ("l.json", '"体育"', ("l.json: expected a list of labels or a mapping name → words at the top level, got str",)),
    ("l.json", "3", ("got int 3",)),
    ("l.yaml", "体育\n", ("l.yaml: expected a list of labels or a mapping name → words", "got str '体育'")),
    ("l.json", '[\n  "a",\n  1.5]', ("l.json:3: a label must be a string, got float 1.5",)),
    ("l.json", '[["a", "b"]]', ("l.json:1: a label must be a string, got list",)),
    ("l.json", '[true]', ("l.json:1: label name True is a boolean", "quote it")),
    ("l.yaml", "- yes\n- no\n", ("l.yaml: entry 1: label name True is a boolean (YAML reads yes/no/on/off/true/false so); "
                                 "quote it, e.g. 'no'",)),
    ("l.yaml", "on: x\n", ("l.yaml:1: label name True is a boolean",)),
    ("l.yaml", "1.5: x\n", ("l.yaml:1: a label must be a string, got float 1.5",)),
    ("l.json", '{"a": 3}', ("l.json:1: label 'a': words must be a word or a list of words, got int 3 (quote it)",)),
    ("l.json", '{"a": [1]}', ("l.json:1: label 'a': words[0] must be a word or a list of words, got int 1",)),
    ("l.yaml", "a:\n  words: x\n  description: {x: 1}\n",
     ("l.yaml:3: label 'a': description must be a sentence or a list of sentences, got mapping",)),
    ("l.json", '[{"name": ["a"]}]', ("l.json:1: a label must be a string, got list ['a']",)),
    ("l.json", '[{"words": "a"}]', ("l.json:1: a label object without 'name'; give each one a name (keys: name, words, "
                                    "description)",)),
])
def test_wrong_types(tmp_path, name, content, needles):
    fails(write(tmp_path, name, content), *needles)


@pytest.mark.parametrize("name, content, needles", [
    ("l.json", '{"a": {"word": "x"}}', ("l.json:1: label 'a' has unknown key 'word'; the allowed keys are words, "
                                        "description",)),
    ("l.json", '{"a": {"words": "x", "desc": "y", "name": "a"}}', ("unknown keys 'desc', 'name'",
                                                                   "allowed keys are words, description")),
    ("l.json", '[{"name": "a", "label": "x"}]', ("l.json:1: a label object in a list has unknown key 'label'; the "
                                                 "allowed keys are name, words, description",)),
    ("l.yaml", "- name: a\n- name: b\n  descriptions: x\n", ("l.yaml:2: a label object in a list has unknown key "
                                                             "'descriptions'", "name, words, description")),
    ("l.json", '{"a": {"words": "x",\n "words": "y"}}', ("l.json:1: label 'a' has the key 'words' twice; keep one",)),
])
def test_unknown_and_repeated_keys(tmp_path, name, content, needles):
    fails(write(tmp_path, name, content), *needles)


@pytest.mark.parametrize("name, content, needles", [
    ("l.json", '["a", "\\ud800b"]', ("l.json:1: label '\\ud800b' is not valid Unicode: lone surrogate",)),
    ("l.json", '{"a": ["x", "\\udc00"]}', ("l.json:1: label 'a': words[1] is not valid Unicode",)),
    ("l.json", '[{"name": "a", "description": "d\\ud83d"}]', ("label 'a': description is not valid Unicode",)),
    ("l.yaml", 'a:\n  words: "\\ud800"\n', ("l.yaml:2: label 'a': words is not valid Unicode",)),
])
def test_lone_surrogates(tmp_path, name, content, needles):
    fails(write(tmp_path, name, content), *needles)


@pytest.mark.parametrize("name, content, needles", [
    ("l.json", '{\n  "a": "x",\n  "b": "y",\n}', ("l.json:4:1: invalid JSON (Expecting property name enclosed in double "
                                                 "quotes)",)),
    ("l.json", '["a"\n "b"]', ("l.json:2:2: invalid JSON (Expecting ',' delimiter)",)),
    ("l.yaml", "- a\n- [b\n", ("l.yaml", "invalid YAML")),
    ("l.yaml", "a: !!python/object:os.system x\n", ("l.yaml:1: invalid YAML", "tags such as !!python")),
])
def test_syntax_errors(tmp_path, name, content, needles):
    fails(write(tmp_path, name, content), *needles)


# --- thousands of labels -----------------------------------------------------------------------

def test_five_thousand_labels_in_each_format(tmp_path):
    """5,000 labels with words and descriptions: one pass, no per-label rescans (.txt ~0.02 s, .json ~0.1 s;
    .yaml is bound by yamlcheck's pure-Python YAML parser, ~1 s)."""
    n = 5000
    rows = [(f"label{i:04d}", [f"w{i}", f"词{i}"], f"这是第{i}类的描述。") for i in range(n)]
    txt = "".join(f"{name}\t{'|'.join(words)}\t{text}\n" for name, words, text in rows)
    jsn = json.dumps({name: {"words": words, "description": text} for name, words, text in rows}, ensure_ascii=False,
                     indent=1)
    yml = "".join(f"- name: {name}\n  words: [{', '.join(words)}]\n  description: {text}\n" for name, words, text in rows)
    for name, content in (("big.txt", txt), ("big.json", jsn), ("big.yaml", yml)):
        labels = read_labels_file(write(tmp_path, name, content))
        assert len(labels) == n and list(labels)[:2] == ["label0000", "label0001"]
        assert labels["label4999"] == {"words": ("w4999", "词4999"), "descriptions": ("这是第4999类的描述。",)}
    # a mistake at the end of a big file is still found by its line
    fails(write(tmp_path, "bad.json", jsn[:-2] + ',\n "label0007": "x"\n}'), "bad.json:", "label 'label0007' is given "
          "twice (first at line 51)")   # 1 + 7 entries of 7 lines each + 1


# ---- the one label rule, with the file's lines; bounded work -------------------------------------
def test_a_name_of_invisible_characters_only_is_refused(tmp_path):
    fails(write(tmp_path, "l.txt", "体育\n\u200b\u200d\n"), "l.txt:2: a label is an empty string once invisible characters "
                                                            "are removed")
    fails(write(tmp_path, "l.json", '{"\\u00ad": "x"}'), "l.json:1: a label is an empty string once invisible characters "
                                                        "are removed")
    fails(write(tmp_path, "l.yaml", "a: x\nb: ['\u200e']\n"), "l.yaml:2: label 'b': words[0] is empty")


@pytest.mark.parametrize("name, content, needle", [
    ("l.txt", "体育\n" + "x" * 100_000 + "\n", "l.txt:2: label 'xxxxx"),
    ("l.txt", "体育\t运动|" + "x" * 201 + "\n", "l.txt:1: label '体育': words[1] 'xxxx"),
    ("l.json", '{"体育": "运动",\n "' + "体" * 201 + '": null}', "l.json:2: label '体体体"),
    ("l.yaml", "a:\n  words: " + "x" * 201 + "\n", "l.yaml:2: label 'a': words 'xxx"),
])
def test_a_name_or_word_over_the_label_limit_is_refused_at_its_line(tmp_path, name, content, needle):
    message = fails(write(tmp_path, name, content), needle, "more than the 200 a label name or word may have")
    assert len(message) < 500


def test_names_that_differ_only_by_normalisation_are_duplicates_naming_both_lines(tmp_path):
    fails(write(tmp_path, "l.txt", "café\n财经\ncafe\u0301\n"),
          "l.txt:3: labels 'caf\u00e9' and 'cafe\u0301' differ only in invisible characters, accents, spacing or "
          "Unicode form",
          "(first at line 1); keep one")
    fails(write(tmp_path, "l.yaml", "体育: 运动\n体 育: 比赛\n"), "l.yaml:2: labels '体育' and '体 育' differ only")


def test_the_label_count_and_file_size_limits_are_checked_before_the_entries(tmp_path, monkeypatch):
    import nspzero.label_files as label_files

    monkeypatch.setattr(label_files, "MAX_LABELS", 3)
    for name, content in [("l.txt", "a\nb\n# c\n\nc\nd\n"), ("l.json", '["a", "b", "c", 4]'),
                          ("l.yaml", "a: 1\nb: 2\nc: 3\nd: [4]\n")]:   # d's bad entry is never reached
        fails(write(tmp_path, name, content), f"{name}: 4 labels; at most 3 are taken")
    assert list(read_labels_file(write(tmp_path, "l.txt", "a\nb\n# c\nc\n"))) == ["a", "b", "c"]
    monkeypatch.setattr(label_files, "MAX_LABELS_FILE_BYTES", 2**20)
    fails(write(tmp_path, "l.txt", "a\n" * 2**19 + "b"), "l.txt: larger than 1 MiB, the most a labels file may be")


def test_a_billion_laughs_labels_file_is_refused_at_once(tmp_path):
    from test_yamlcheck import LAUGHS

    with pytest.raises(UsageError, match="expand to more than 1,000,000 values"):
        read_labels_file(write(tmp_path, "l.yaml", LAUGHS))
