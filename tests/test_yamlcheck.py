"""yamlcheck.py: the strict YAML reader of every user file; bounded work and bounded messages
whatever the file holds."""
import time

import pytest

from nspzero.errors import UsageError
from nspzero.errors import shown
from nspzero.yamlcheck import MAX_YAML_VALUES, expect_str, read_yaml

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


def test_aliases_that_expand_past_the_limit_are_refused_at_once():
    assert len(LAUGHS) < 600 and 9 ** 9 > MAX_YAML_VALUES
    start = time.perf_counter()
    with pytest.raises(UsageError, match=r"^f.yaml: its YAML aliases \(\*name\) expand to more than 1,000,000 "
                                         r"values; write the values out or use fewer aliases$"):
        read_yaml(LAUGHS, "f.yaml")
    assert time.perf_counter() - start < 1.0


def test_a_few_aliases_still_work_and_a_self_reference_is_refused():
    assert read_yaml("a: &a [1, 2]\nb: [*a, *a]\n", "f.yaml") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}
    with pytest.raises(UsageError, match=r"^f.yaml:1: a YAML alias refers to the value that holds it"):
        read_yaml("x: &x [1, *x]\n", "f.yaml")


def test_an_integer_too_long_to_convert_is_one_line():
    with pytest.raises(UsageError, match=r"^f.yaml: invalid YAML value \(Exceeds the limit"):
        read_yaml("a: " + "9" * 5000, "f.yaml")


def test_messages_show_a_bounded_value_however_big_it_is():
    big = read_yaml(LAUGHS.splitlines()[0] + "\n" + "b: [" + ", ".join(["*a"] * 5000) + "]\n", "f.yaml")["b"]
    assert len(shown(big)) < 200 and len(shown("x" * 10**6)) < 100 and len(shown(10 ** 5000)) < 100
    with pytest.raises(UsageError) as info:
        expect_str(big, "f.yaml:2: field 'b'")
    assert len(str(info.value)) < 300
