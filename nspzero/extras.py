"""What to type to add an optional extra, for the way nspzero was installed: `pip install
'nspzero[serve]'` works only for a package index install; a clone needs its own path."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _local_source() -> Optional[tuple[str, bool]]:
    """(folder, editable) when nspzero runs from a clone or was installed from one, else None."""
    if (SOURCE_ROOT / "pyproject.toml").is_file():  # imported from a source tree (editable install or not)
        return str(SOURCE_ROOT), True
    from importlib import metadata

    try:  # PEP 610: pip records where a local install came from
        record = json.loads(metadata.distribution("nspzero").read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not record or urlparse(record.get("url", "")).scheme != "file":
        return None
    return unquote(urlparse(record["url"]).path), bool(record.get("dir_info", {}).get("editable"))


def install_hint(extra: str) -> str:
    """The pip command that adds `extra`: `pip install -e '/path/to/clone[extra]'` from a clone,
    `pip install 'nspzero[extra]'` after an install from a package index."""
    local = _local_source()
    if local is None:
        return f"pip install {shlex.quote(f'nspzero[{extra}]')}"
    folder, editable = local
    return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{folder}[{extra}]')}"
