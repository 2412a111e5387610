"""The tuning settings (nspzero.tuning.settings): the paper's defaults, and bad values refused by name."""
import pytest

from nspzero.errors import UsageError
from nspzero.tuning import TuneSettings


def test_the_defaults_are_the_papers_recipe():
    s = TuneSettings()
    assert (s.epochs, s.learning_rate, s.batch_size, s.max_length, s.loss) == (10, 1e-5, 8, 128, "bce")


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", -1), ("chunk_pairs", 1.5), ("max_length", True),
                                          ("learning_rate", 0.0), ("learning_rate", float("nan")), ("loss", "mse"),
                                          ("seed", "0")])
def test_bad_values_are_refused_naming_the_field(field, value):
    with pytest.raises(UsageError, match=field):
        TuneSettings(**{field: value})
