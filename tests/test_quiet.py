"""quiet.py: transformers' and the hub's chatter is silenced inside the block and restored after it,
also when the block raises."""
import logging
import warnings

import pytest
from transformers.utils import logging as tlog

from nspzero.quiet import quiet_transformers


@pytest.mark.parametrize("fails", [False, True])
def test_silenced_inside_and_restored_after(fails):
    tlog.set_verbosity_info()
    tlog.enable_progress_bar()
    hub = logging.getLogger("huggingface_hub")
    hub.setLevel(logging.DEBUG)
    try:
        with pytest.raises(RuntimeError) if fails else warnings.catch_warnings():
            with quiet_transformers():
                assert tlog.get_verbosity() == logging.ERROR and not tlog.is_progress_bar_enabled()
                assert hub.level == logging.ERROR
                with warnings.catch_warnings(record=True) as seen:
                    warnings.warn("noise")
                assert not seen                                     # warnings ignored inside
                if fails:
                    raise RuntimeError("inside")
        assert tlog.get_verbosity() == logging.INFO and tlog.is_progress_bar_enabled()
        assert hub.level == logging.DEBUG
    finally:
        tlog.set_verbosity_warning()
        hub.setLevel(logging.NOTSET)
