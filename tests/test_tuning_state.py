"""Resume state (nspzero.tuning.state): one file per run, refused when the run differs."""
import pytest

from nspzero.errors import UsageError
from nspzero.tuning.state import STATE_FILE, fingerprint, load_state, save_state

ARGS = (["a", "b"], ["x", "y"], {"labels": ["x", "y"]}, {"epochs": 2}, None)


def test_a_saved_state_comes_back_for_the_same_run_only(tmp_path):
    key = fingerprint(*ARGS)
    assert load_state(str(tmp_path / "none"), key) is None and load_state(None, key) is None
    save_state(str(tmp_path), {"fingerprint": key, "epoch": 1})
    assert load_state(str(tmp_path), key)["epoch"] == 1
    for changed in (fingerprint(["a", "c"], *ARGS[1:]), fingerprint(*ARGS[:3], {"epochs": 3}, None),
                    fingerprint(*ARGS[:4], (["d"], ["x"]))):
        with pytest.raises(UsageError, match="another run"):
            load_state(str(tmp_path), changed)


def test_a_damaged_state_is_one_line(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"not a torch file")
    with pytest.raises(UsageError, match="cannot be read") as info:
        load_state(str(tmp_path), fingerprint(*ARGS))
    assert "\n" not in str(info.value)
