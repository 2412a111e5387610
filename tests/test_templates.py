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
    (["a", 3], "must be strings"),
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
    with pytest.raises(UsageError, match="verbalization must be a non-empty string"):
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


def test_a_huge_duplicate_label_is_named_in_bounded_words():
    """Two 1 MB labels that differ by a zero-width space: the message names them, cut, not whole."""
    big = "体育" * 500_000
    with pytest.raises(UsageError, match="differ only in invisible") as info:
        label_specs([big, "财经", big + "\u200b"])
    assert len(str(info.value)) < 1_000

