"""The typer app and the console entry point: NSPZeroErrors become one line and an exit code.

Exit codes: 0 success, 2 usage errors (bad options, templates, labels), 1 data or model errors,
130 interrupted. Commands live in their own modules and register themselves on `app`.
"""
import contextlib
import logging
import sys
from typing import Callable, NoReturn, Optional

import typer

from ..errors import NSPZeroError, bounded

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Zero-shot text classification with BERT's next-sentence-prediction head (NSP-BERT).")


def _print_version(value: bool) -> None:
    """`nspzero --version`: the package's version, read without importing torch."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("nspzero")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        typer.echo(f"nspzero {number}")
        raise typer.Exit()


@app.callback()
def _root(show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                            help="Print nspzero's version and exit.")) -> None:
    """Zero-shot text classification with BERT's next-sentence-prediction head (NSP-BERT)."""


class _BarSafeHandler(logging.Handler):
    """Writes warnings through tqdm, so a line printed while a progress bar runs does not break it."""

    _nspzero_cli = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _install_log_handler() -> Callable[[], None]:
    """Route the 'nspzero' logger to stderr for one command; returns what undoes it (so that calling
    `main` in-process, e.g. from tests, leaves the logging setup as it was)."""
    logger = logging.getLogger("nspzero")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    if not any(getattr(h, "_nspzero_cli", False) for h in logger.handlers):
        handler = _BarSafeHandler()
        handler.setFormatter(logging.Formatter("nspzero: %(levelname_lower)s: %(message)s"))
        handler.addFilter(_lower_level)
        logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def restore() -> None:
        logger.handlers[:] = saved[0]
        logger.propagate, logger.level = saved[1], saved[2]
    return restore


def _lower_level(record: logging.LogRecord) -> bool:
    record.levelname_lower = "note" if record.levelno < logging.WARNING else record.levelname.lower()
    return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _exit_cleanly_on_sigterm() -> Callable[[], None]:
    """`kill PID` (SIGTERM) unwinds like Ctrl-C: temp files are removed, old outputs stay. Returns
    what puts the previous SIGTERM and SIGINT handlers back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _interrupt), signal.getsignal(signal.SIGINT)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])  # `_interrupted` ignores a second Ctrl-C
    return restore


def _interrupted(message: str = "nspzero: interrupted; no output file was changed") -> NoReturn:
    """Exit 130 after Ctrl-C (or kill), also when Ctrl-C is pressed again while exiting: a second
    KeyboardInterrupt raised here would escape `main`, and Python then ends the process by SIGINT."""
    import signal

    with contextlib.suppress(ValueError):  # ValueError: not the main thread, where no signal arrives
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(message, file=sys.stderr)
    sys.exit(130)


def _help_command(exc: Exception) -> str:
    """`nspzero eval` for an error in eval's options, `nspzero` for one before any command: the help that
    answers it."""
    ctx = getattr(exc, "ctx", None)
    parts = [ctx.info_name] if ctx is not None and ctx.parent is not None and ctx.info_name else []
    return " ".join(["nspzero", *parts])


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: NSPZeroErrors become one line on stderr and an exit code."""
    restore_logging = _install_log_handler()
    restore_signals = _exit_cleanly_on_sigterm()
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # typer turns Ctrl-C into a return value of 130
            if code == 130:
                _interrupted()
            sys.exit(code)
    except NSPZeroError as exc:
        print(f"nspzero: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:  # the machine's, not the input's: a full disk, an I/O error, a closed pipe
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"nspzero: error: {bounded(f'{exc.strerror or exc}{where}')}", file=sys.stderr)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _interrupted("nspzero: aborted")
    except KeyboardInterrupt:
        _interrupted()
    except typer.TyperException as exc:  # usage errors from the parser (typer vendors click)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # (empty when the parser has already printed the help)
            print(f"nspzero: error: {bounded(message)} (see {_help_command(exc)} --help)", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    finally:
        restore_logging()
        restore_signals()
