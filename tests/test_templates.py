import re

import pytest

from nspzero.errors import UsageError
from nspzero.templates import Template, check_placement, label_words


def test_render_label_and_escaped_braces():
    t = Template.parse("这是一则{label}新闻 {{literal}}")
    assert t.render(label="体育") == "这是一则体育新闻 {literal}"
    assert t.fields == {"label"}


def test_text_placeholder_when_allowed():
    t = Template.parse("{text}上文中{label}", allowed=("label", "text"))
    assert t.render(label="他", text="我") == "我上文中他"


@pytest.mark.parametrize("source, fragment", [
    ("{label.__class__}", "{label.__class__}"),
    ("{label[0]}", "{label[0]}"),
    ("{0}", "{0}"),
    ("{}", "{}"),
    ("{label!r}", "{label!r}"),
    ("{label:>10}", "{label:>10}"),
    ("{text}{label}", "{text}"),
    ("{label", "unbalanced"),
    ("label}", "unbalanced"),
])
def test_unsafe_or_broken_templates_are_refused_naming_the_template(source, fragment):
    with pytest.raises(UsageError) as info:
        Template.parse(source)
    assert repr(source) in str(info.value)
    assert fragment in str(info.value)


def test_template_without_label_is_refused():
    with pytest.raises(UsageError, match=r"has no \{label\} placeholder"):
        Template.parse("这是一则新闻")


def test_label_words_from_list_and_dict():
    assert label_words(["a", "b"]) == {"a": ("a",), "b": ("b",)}
    assert label_words({"pos": "好", "neg": ["差", "坏"]}) == {"pos": ("好",), "neg": ("差", "坏")}


@pytest.mark.parametrize("labels, message", [
    (["a", "a"], "given twice"),
    (["a", ""], "empty string"),
    (["a", 3], "^a label must be a string, got int 3$"),
    ([], "no labels"),
    ("a,b", "single string"),
    ({"a": ""}, "verbalization"),
    ({"a": []}, "verbalization"),
])
def test_bad_labels(labels, message):
    with pytest.raises(UsageError, match=message):
        label_words(labels)


def test_placement():
    assert check_placement("suffix") == "suffix"
    with pytest.raises(UsageError, match="prefix"):
        check_placement("middle")


# ---- the one label rule: visible, distinct once normalised, a word for one label only ------------
from nspzero.templates import has_content, label_key, label_specs  # noqa: E402


@pytest.mark.parametrize("invisible", ["\u200b", "\u200d", "\u00ad", "\u200e\u200f", "\u202a\u202c", " \u200b "])
def test_a_label_of_invisible_characters_only_is_refused_like_an_empty_one(invisible):
    assert not has_content(invisible)
    with pytest.raises(UsageError, match=r"^a label is an empty string once invisible characters are removed "
                                         r"\(.*\); every label needs a visible name$"):
        label_specs(["体育", invisible])
    with pytest.raises(UsageError, match="^label '财经': its verbalization is empty once invisible characters are "
                                         "removed; write it or remove it$"):
        label_specs({"体育": "运动", "财经": invisible})


@pytest.mark.parametrize("first, second", [
    ("体育", "体育\u200b"),            # zero-width space
    ("体育", "体\u00ad育"),            # soft hyphen
    ("café", "cafe\u0301"),            # composed vs combining accent
    ("café", "cafe"),                  # accents (BERT's tokenizer strips them)
    ("体 育", "体育"),                 # spaces inside CJK
    ("ｓｐｏｒｔ", "sport"),            # NFKC: full-width letters
    ("new  york", "new york"),         # runs of spaces
])
def test_labels_that_differ_only_by_normalisation_are_duplicates_naming_both(first, second):
    assert label_key(first) == label_key(second)
    with pytest.raises(UsageError, match=re.escape(f"labels {first!r} and {second!r} differ only in invisible "
                                                   f"characters, accents, spacing or Unicode form")):
        label_specs([first, "财经", second])


@pytest.mark.parametrize("first, second", [("Sport", "sport"), ("new york", "newyork"), ("क", "कि"), ("体育", "体肓")])
def test_labels_the_model_can_tell_apart_stay_distinct(first, second):
    assert list(label_specs([first, second])) == [first, second]


def test_a_word_under_two_labels_is_refused_naming_both():
    with pytest.raises(UsageError, match=r"^labels '体育' and '健身' share the word '运动', so they tie on it"):
        label_specs({"体育": ["比赛", "运动"], "健身": ["运动"]})
    with pytest.raises(UsageError, match=r"share the word '运动' / '运动\\u200b'"):
        label_specs({"体育": ["运动"], "健身": ["运动\u200b"]})
    with pytest.raises(UsageError, match="share the description '一则新闻'"):
        label_specs({"a": {"description": "一则新闻"}, "b": {"description": "一则新闻"}})
    assert label_specs({"a": ["x", "x"], "b": "y"})["a"].words == ("x", "x")   # one label's own words may repeat


from nspzero.templates import MAX_LABEL_CHARS  # noqa: E402


@pytest.mark.parametrize("labels, where", [
    (["体育", "x" * 100_000], "label 'xxx"),                              # WordPiece would read it as one [UNK]
    ({"体育": "运动", "财经": ["钱", "体" * (MAX_LABEL_CHARS + 1)]}, "label '财经': its verbalization[1] '体体"),
    ({"体育": {"words": "体" * (MAX_LABEL_CHARS + 1)}}, "label '体育': words '体体"),
])
def test_a_label_or_word_longer_than_the_limit_is_refused_in_one_bounded_line(labels, where):
    with pytest.raises(UsageError) as info:
        label_specs(labels)
    message = str(info.value)
    assert message.startswith(where) and "\n" not in message and len(message) < 400
    assert f"characters, more than the {MAX_LABEL_CHARS} a label name or word may have; name it in a few words and " \
           f"give the long text as a description" in message


def test_labels_words_and_descriptions_at_the_limit_are_taken():
    name = "体" * MAX_LABEL_CHARS
    specs = label_specs({name: {"words": "育" * MAX_LABEL_CHARS, "description": "一则很长的描述。" * 1_000}})
    assert list(specs) == [name] and specs[name].words == ("育" * MAX_LABEL_CHARS,)

