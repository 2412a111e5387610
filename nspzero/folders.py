"""Writing output folders all at once: a new one (a converted checkpoint, an ONNX export) is
built beside its destination and renamed into place, so a failure never leaves half a model; an
existing one (an eval's results, predictions, plots and report) is rebuilt beside itself and
swapped in one rename, so a failure never leaves new files beside old ones.
Files are io.py's job (`atomic_file`); this module knows only folders."""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import os
import re
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .errors import DataError, ModelError, NSPZeroError, UsageError, failure_reason


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
    block ends normally: a failure (or Ctrl-C) leaves nothing at `out` and no temp folder; a killed
    run's temp folder carries its pid and is removed by the next run (`clean_leftovers`)."""
    clean_leftovers(out, once=True)
    tmp = _folder_beside(out, tag)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)  # atomic; replaces only a missing or empty folder
    except NSPZeroError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - a full disk is an OSError, or a writer's own error (safetensors')
        full = full_disk(tmp)  # before the temp folder is removed: its removal frees the space again
        shutil.rmtree(tmp, ignore_errors=True)
        reason = full or failure_reason(exc)
        raise ModelError(f"could not write {out}: {reason}; nothing was written there") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


FULL_DISK_BYTES = 16 << 20  # a write that fails with less than this free on its disk failed for the disk


def free_bytes(path: str | os.PathLike) -> Optional[int]:
    """The bytes an unprivileged writer may still use on the disk holding `path` (None: unknown)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def full_disk(path: str | os.PathLike, needed: int = FULL_DISK_BYTES) -> Optional[str]:
    """A reason naming the full disk when the disk holding `path` has less than `needed` bytes free,
    else None. Writers that do not report ENOSPC (an exporter that leaves a truncated file, which the
    next step reads as "Wire format was corrupt") are told apart from real failures this way."""
    free = free_bytes(path)
    if free is None or free >= needed:
        return None
    return (f"No space left on device ({free >> 20} MiB free on the disk holding {path}"
            + (f", about {-(-needed >> 20)} MiB needed" if needed != FULL_DISK_BYTES else "") + "); free some space")


def locked_file(path: Path, wait: bool = True) -> int:
    """An fd holding an exclusive flock on `path` (created if need be). Whoever holds such a lock may
    remove the file when done, so a lock taken on a file removed meanwhile is taken again on the new
    one: two holders never coexist. With `wait=False`, BlockingIOError when another process holds it.
    A missing parent folder raises FileNotFoundError (a caller whose folder may go makes it again)."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:  # removed between our open and our lock: take the new file's
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def temp_prefix(out: Path, kind: str) -> str:
    """`.<name>.<kind>-<pid>-`: the name of every temp file or folder beside `out`, which
    `clean_leftovers` recognises (a kind of `KINDS`) and removes once its pid no longer runs."""
    assert kind in KINDS, kind
    return f".{out.name}.{kind}-{os.getpid()}-"


def _folder_beside(out: Path, kind: str) -> Path:
    """A new empty folder `.<name>.<kind>-<pid>-XXXX` beside `out` (same file system: renames are atomic)."""
    try:
        return Path(tempfile.mkdtemp(prefix=temp_prefix(out, kind), dir=out.parent))
    except OSError as exc:
        raise UsageError(f"cannot write in {out.parent}: {exc.strerror or exc}") from None


# ---- replacing an existing folder as one unit (nspzero eval's output folder) ----------------------
STAGING = "staging"   # .<name>.staging-<pid>-XXXX: the next folder, being filled
PREVIOUS = "previous"  # .<name>.previous-<pid>-XXXX: the last one, moved aside (only without renameat2)
# every kind of temp beside an output: io.atomic_file's files, atomic_folder's tags, replaced_folder's
KINDS = frozenset({"writing", "converting", "exporting", "tuning", STAGING, PREVIOUS})
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>[a-z]+)-(?P<pid>[0-9]{1,9})-[^.]+(?:\.tmp)?", re.DOTALL)
_swept: set[str] = set()
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def check_folder_output(out: str | os.PathLike, inputs: Sequence[Optional[str]], name: str = "--output-dir") -> None:
    """Refuse, before anything runs, an output folder that is one of the run's inputs or holds one
    (the data, the model, a prompt file), or holds the current folder: it is replaced whole."""
    target = Path(os.path.realpath(os.path.expanduser(os.fspath(out))))
    if Path.cwd().resolve().is_relative_to(target):
        raise UsageError(f"{name} {os.fspath(out)!r} holds the current folder; it is replaced as a whole when the run "
                         f"ends, so give a folder of its own (e.g. nspzero-results)")
    for source in inputs:
        if source and source != "-" and os.path.exists(source):
            if Path(os.path.realpath(source)).is_relative_to(target):
                raise UsageError(f"{name} {os.fspath(out)!r} is or holds the input {source!r}; it is replaced as a "
                                 f"whole when the run ends, so write the results elsewhere")


@contextlib.contextmanager
def replaced_folder(out: str | os.PathLike, owned: Sequence[str] = ()) -> Iterator[Path]:
    """An empty folder beside `out` to fill with the next version of its outputs; when the block
    ends normally, `out`'s other entries (a cache, other files) are hard-linked beside them and the
    two folders swap in one atomic rename: readers see every old file or every new one, and a
    failure (or Ctrl-C, or kill -9) at any point leaves `out` as it was. Leftovers of a killed run
    are removed by the next one (`clean_leftovers`). The names matching a pattern of `owned` (fnmatch:
    `*.predictions.jsonl`) belong to the new version even when it did not write them: an old copy is
    not carried over (a stale report, plot or task's predictions beside new results)."""
    out = Path(os.path.realpath(os.path.expanduser(os.fspath(out))))
    clean_leftovers(out)
    stage = _folder_beside(out, STAGING)
    try:
        yield stage
        if out.is_dir():
            _link_others(out, stage, set(owned))
        os.chmod(stage, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~current_umask())  # as before
        _swap(stage, out)
    except NSPZeroError:
        raise
    except OSError as exc:
        raise DataError(f"could not write {out}: {exc.strerror or exc}; its previous files are unchanged") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # after the swap: the previous version


def clean_leftovers(out: Path, once: bool = False) -> None:
    """Remove, in the folder holding `out`, the temp files and folders (`temp_prefix`) of runs that
    no longer live; a moved-aside folder whose run died before the new one took its place is put
    back (when its output is missing or empty). Call it before creating `out`: an empty `out` must
    not hide the old results. `once`: sweep each folder once per process (a write per row stays cheap)."""
    folder = os.path.realpath(out.parent)
    if once and folder in _swept:
        return
    _swept.add(folder)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _LEFTOVER.fullmatch(entry.name)
            if not match or match["kind"] not in KINDS or pid_alive(int(match["pid"])):
                continue
            target = Path(folder, match["name"])
            if match["kind"] == PREVIOUS and entry.is_dir(follow_symlinks=False) and _missing_or_empty(target):
                with contextlib.suppress(FileNotFoundError):
                    target.rmdir()
                os.replace(entry.path, target)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _missing_or_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def current_umask() -> int:
    """The process's umask (only readable by setting it): new outputs get the usual permissions."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs (its temp files and folders are then left alone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True




def _link(src: str, dst: str) -> None:
    """Hard-link (no copy of the bytes, no change to the file); a copy across file systems."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _link_others(out: Path, stage: Path, owned: set[str]) -> None:
    """Every entry of `out` that the new version does not write (nor own), linked into `stage`."""
    written = set(os.listdir(stage))
    for entry in os.scandir(out):
        if entry.name in written or any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in owned):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, stage / entry.name, symlinks=True, copy_function=_link)
        else:
            _link(entry.path, str(stage / entry.name))


def _swap(stage: Path, out: Path) -> None:
    """`stage` takes `out`'s place and `out`'s old content ends in `stage`: one renameat2
    RENAME_EXCHANGE on Linux; elsewhere (or on file systems without it) two renames, undone if
    the second fails, and recovered by `clean_leftovers` if the process dies between them."""
    if not out.exists():
        os.rename(stage, out)
        return
    if _exchange(stage, out):
        return
    aside = out.parent / f".{out.name}.{PREVIOUS}-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(out, aside)
    try:
        os.rename(stage, out)
    except BaseException:
        os.rename(aside, out)
        raise
    os.rename(aside, stage)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2; False where it is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))
