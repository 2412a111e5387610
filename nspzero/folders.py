"""Writing a new output folder (a converted checkpoint, an ONNX export) all at once: the folder is
built beside its destination and renamed into place, so a failure never leaves half a model.
Files are io.py's job (`atomic_file`); this module knows only folders."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import ModelError, UsageError


def new_folder(out_dir: str | os.PathLike, name: str = "OUT_DIR") -> Path:
    """`out_dir` as an absolute path that may be written as a new folder: absent or an empty folder,
    in a folder that exists (UsageError otherwise: nothing is ever overwritten)."""
    out = Path(os.path.expanduser(os.fspath(out_dir))).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not an empty folder; choose a new {name} (nothing is "
                         f"overwritten)")
    if not out.parent.is_dir():
        raise UsageError(f"the folder {out.parent} does not exist; create it first")
    return out


@contextlib.contextmanager
def atomic_folder(out: Path, tag: str) -> Iterator[Path]:
    """A temp folder beside `out` to fill, renamed onto `out` (checked by `new_folder`) when the
    block ends normally: a failure (or Ctrl-C) leaves nothing at `out` and no temp folder."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{tag}-", dir=out.parent))
    except OSError as exc:
        raise UsageError(f"cannot write in {out.parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)  # atomic; replaces only a missing or empty folder
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"could not write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
