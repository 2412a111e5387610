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
