"""nspzero.extras: the pip command for a missing extra fits the way nspzero was installed."""
import json
from importlib import metadata

import pytest

from nspzero import extras


class _Dist:
    def __init__(self, direct_url):
        self.direct_url = direct_url

    def read_text(self, name):
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


def test_a_clone_gets_its_own_path_editable():
    root = extras.SOURCE_ROOT
    assert (root / "pyproject.toml").is_file()   # the tests run from a source tree
    assert extras.install_hint("serve") == f"pip install -e '{root}[serve]'"


@pytest.mark.parametrize("direct_url, expected", [
    (None, "pip install 'nspzero[serve]'"),                                               # from an index
    ({"url": "https://files.example/nspzero-0.1.0-py3-none-any.whl", "archive_info": {}},
     "pip install 'nspzero[serve]'"),
    ({"url": "file:///home/me/nspzero", "dir_info": {}}, "pip install '/home/me/nspzero[serve]'"),   # a clone, copied
    ({"url": "file:///home/me/my%20code", "dir_info": {"editable": True}},
     "pip install -e '/home/me/my code[serve]'"),
])
def test_an_installed_package_reads_pips_record(monkeypatch, tmp_path, direct_url, expected):
    monkeypatch.setattr(extras, "SOURCE_ROOT", tmp_path)   # no pyproject.toml: an installed copy
    monkeypatch.setattr(metadata, "distribution", lambda name: _Dist(direct_url))
    assert extras.install_hint("serve") == expected


def test_missing_extra_messages_use_the_hint():
    from nspzero import onnx_model, serve

    assert onnx_model.extra_missing().endswith(f": {extras.install_hint('onnx')} (it installs onnxruntime)")
    assert serve.extra_missing().endswith(extras.install_hint("serve"))


def test_the_hint_is_looked_up_only_when_a_message_needs_it():
    """Importing the modules that name an extra reads no file and no package metadata."""
    import subprocess
    import sys

    code = ("import nspzero.extras as e\n"
            "def looked_up(): raise SystemExit('install_hint ran at import')\n"
            "e._local_source = looked_up\n"
            "import nspzero.serve.app, nspzero.onnx_model, nspzero.reports.png, nspzero.io, nspzero.onnx_export\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import sys

    from nspzero.errors import UsageError
    from nspzero.io import read_texts

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "in.parquet").write_bytes(b"PAR1")
    with pytest.raises(UsageError) as info:
        list(read_texts(str(tmp_path / "in.parquet")))
    assert str(info.value) == f"reading .parquet needs pyarrow: {extras.install_hint('parquet')} (or pip install pyarrow)"
