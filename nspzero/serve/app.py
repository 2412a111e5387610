"""The FastAPI app of `nspzero serve` and the uvicorn runner: a thin layer over the library.

`create_app` wires FastAPI's documented pieces: the routes (`routers`), their dependencies
(`dependencies`: the limits, checked from a request's counts before any rendering), the models
(`models`; the classify body is the library's `ClassifyArgs`), the micro-batcher (`batcher`),
the page (`nspzero.web`) and, for the browser, a Content-Security-Policy and an allowed-hosts check
(`security`). Every error is JSON `{"detail": one line, "field": the field it is about}`.
"""
from __future__ import annotations

import contextlib
import ipaddress
import logging
from typing import Any, Optional, Sequence, Union

from ..classifier import NSPClassifier
from ..errors import NSPZeroError, UsageError, shown
from ..extras import install_hint
from ..http_limits import (BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS, MAX_PAIRS, BodyTimeoutMiddleware,
                           fitting_connections, raise_file_limit, timed_protocol)
from ..request import describe_errors
from .security import LOOPBACK_HOSTS

log = logging.getLogger("nspzero")

NO_OFFLINE_DOCS = ("/docs loads Swagger UI from a CDN because the 'fastapi-offline' package is missing: %s to serve "
                   "the docs offline")  # %s: the install hint, looked up only when this is logged
DOCS_STATIC = "/docs-static"


def extra_missing() -> str:
    """The message for a missing 'serve' extra (the install hint is looked up only when needed)."""
    return f"nspzero serve needs the 'serve' extra: {install_hint('serve')}"


def _require_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UsageError(extra_missing()) from None


def _check_limits(**limits: Any) -> None:
    for name, value in limits.items():
        minimum = 0 if name == "window_ms" else 1
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            option = "" if name == "window_ms" else f" (--{name.replace('_', '-')})"
            raise UsageError(f"{name}{option} must be a number ≥ {minimum}, got {shown(value)}")


def _new_app(**kwargs: Any):
    """A FastAPI app whose /docs and /redoc use local assets (fastapi-offline), or CDN ones with a warning."""
    kwargs["swagger_ui_parameters"] = {"validatorUrl": None}  # else Swagger UI fetches a badge from swagger.io
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        import fastapi

        log.warning(NO_OFFLINE_DOCS, install_hint("serve"))
        return fastapi.FastAPI(**kwargs)
    return FastAPIOffline(static_url=DOCS_STATIC, **kwargs)


def create_app(classifier: NSPClassifier, *, max_texts: int = 256, max_labels: int = 256, max_text_chars: int = 20000,
               max_pairs: int = MAX_PAIRS, window_ms: float = 5, max_batch_pairs: int = 2048,
               results_dir: Optional[str] = None, body_timeout: float = BODY_TIMEOUT_S,
               allowed_hosts: Optional[Sequence[str]] = None) -> "fastapi.FastAPI":  # noqa: F821
    """A FastAPI app serving `classifier`; run it with any ASGI server. `allowed_hosts`: the Host
    header names it answers (None: any; `run_server` passes the loopback names on loopback)."""
    _require_extra()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from .. import __version__
    from ..request import RequestError
    from ..web import mount_web
    from .batcher import INTERNAL, MicroBatcher
    from .dependencies import Limits, TooLarge
    from .routers import router
    from .security import AllowedHosts, ContentSecurityPolicy

    _check_limits(max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars, max_pairs=max_pairs,
                  window_ms=window_ms, max_batch_pairs=max_batch_pairs)
    batcher = MicroBatcher(classifier, window_ms, max_batch_pairs)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = _new_app(title="nspzero", version=__version__, lifespan=lifespan,
                   description="Zero-shot text classification with BERT's next-sentence-prediction head.")
    app.state.classifier = classifier
    app.state.batcher = batcher
    app.state.limits = Limits(max_texts, max_labels, max_text_chars, max_pairs)
    app.add_middleware(BodyTimeoutMiddleware, timeout=body_timeout)
    app.add_middleware(ContentSecurityPolicy, fixed_pages=["/docs", "/redoc", app.swagger_ui_oauth2_redirect_url])
    if allowed_hosts is not None:
        app.add_middleware(AllowedHosts, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(TooLarge)
    async def _too_large(_request, exc: TooLarge):
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=413)

    @app.exception_handler(NSPZeroError)
    async def _library_error(_request, exc: NSPZeroError):
        return JSONResponse({"detail": str(exc), "field": exc.field if isinstance(exc, RequestError) else None},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):  # never a plain-text 500, never internals to the client
        log.error("request failed", exc_info=exc)
        return JSONResponse({"detail": f"request failed: {INTERNAL}", "field": None}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, exc: StarletteHTTPException):  # 404, 405: the same JSON shape
        return JSONResponse({"detail": exc.detail, "field": None}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request, exc: RequestValidationError):
        detail, field = describe_errors(exc.errors())  # inputs shown cut: never megabytes echoed back
        return JSONResponse({"detail": "invalid request: " + detail, "field": field}, status_code=422)

    app.include_router(router)
    mount_web(app, limits=app.state.limits.to_dict(), results_dir=results_dir)
    return app


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_bindable(host: str, port: int) -> None:
    """Fail in one line before the model loads (not in uvicorn's log dump) when the address cannot
    be bound: a port in use, an unknown host."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {shown(host)} is not an address of this machine ({exc.strerror}); use 127.0.0.1, "
                         f"0.0.0.0 or a local IP") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise NSPZeroError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; pick another --port "
                               f"(or stop what is using it)") from None


def run_server(model: str, host: str = "127.0.0.1", port: int = 8000, dtype: str = "float32",
               device: Optional[str] = None, max_length: Optional[int] = None, batch_size: int = 32, max_texts: int = 256,
               max_labels: int = 256, max_text_chars: int = 20000, max_pairs: int = MAX_PAIRS,
               compile: Union[bool, str] = False, results_dir: Optional[str] = None,
               header_timeout: float = HEADER_TIMEOUT_S, body_timeout: float = BODY_TIMEOUT_S,
               max_connections: int = MAX_CONNECTIONS, allowed_hosts: Optional[Sequence[str]] = None) -> None:
    """Load `model` and serve it with uvicorn until interrupted (127.0.0.1 only unless `host` says otherwise).
    Slow clients are bounded by `header_timeout`, `body_timeout` and `max_connections` (nspzero.http_limits;
    never more connections than the file-descriptor limit allows). `allowed_hosts`: the Host header names
    answered (default: the loopback names when bound to loopback, else any). The server never compiles
    the model: a compile would pause the first requests for tens of seconds."""
    _require_extra()
    import uvicorn

    if compile not in (False, "off"):
        raise UsageError(f"nspzero serve never compiles the model (compile={shown(compile)}): a compile would pause "
                         f"requests mid-serving; leave out --compile")
    _check_limits(max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars, max_pairs=max_pairs,
                  header_timeout=header_timeout, body_timeout=body_timeout, max_connections=max_connections)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"port must be an integer between 0 and 65535, got {shown(port)}")
    _check_bindable(host, port)
    classifier = NSPClassifier.from_pretrained(model, device=device, max_length=max_length, batch_size=batch_size,
                                               dtype=dtype, compile=compile)
    if allowed_hosts is None and _is_loopback(host):
        allowed_hosts = LOOPBACK_HOSTS
    app = create_app(classifier, max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars,
                     max_pairs=max_pairs, results_dir=results_dir, body_timeout=body_timeout,
                     allowed_hosts=allowed_hosts)
    if not _is_loopback(host):
        log.warning("serving on %s: the server has no authentication; anyone who can reach this address can use it",
                    host)
    uvicorn.run(app, **uvicorn_options(host, port, header_timeout, max_connections))


def uvicorn_options(host: str, port: int, header_timeout: float, max_connections: int) -> dict:
    """uvicorn's settings for `run_server`: the header deadline, and at most as many connections
    as the file-descriptor limit (raised to its hard limit first) leaves room for (more get 503)."""
    fd_limit = raise_file_limit()
    connections = fitting_connections(max_connections, fd_limit)
    if connections < max_connections:
        log.warning("--max-connections %d lowered to %d: the process may open %d files (ulimit -n)",
                    max_connections, connections, fd_limit)
    return dict(host=host, port=port, log_level="info", http=timed_protocol(header_timeout),
                limit_concurrency=connections, timeout_keep_alive=5)
