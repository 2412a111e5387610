"""Connection limits of `nspzero serve`: slow or stalled clients cannot hold the server.

- header timeout: a connection that has not sent a complete request head within `header_timeout`
  seconds (after connecting, or after its previous response) is closed — a half-sent request
  (slowloris) no longer holds a socket forever;
- body timeout: a request body that stalls for `body_timeout` seconds gets HTTP 408 (JSON);
- a cap on open connections (uvicorn's limit_concurrency: 503 beyond it), and the process's
  file-descriptor limit raised to its hard limit so that the cap, not the OS, is what binds.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Optional

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 2048
MAX_PAIRS = 65536           # pairs (texts × prompts) one request may ask to score (413 beyond)


def timed_protocol(header_timeout: float) -> type:
    """uvicorn's h11 protocol with a deadline for each request head."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._start_head_timer()

        def _start_head_timer(self) -> None:
            cycle = self.cycle
            self.loop.call_later(header_timeout, self._head_deadline, cycle)

        def _head_deadline(self, cycle_at_start: Any) -> None:
            # no new request since the timer started, and none being answered: the head is overdue
            waiting = self.cycle is cycle_at_start and (cycle_at_start is None or cycle_at_start.response_complete)
            if waiting and self.transport is not None and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._start_head_timer()

    return HeaderTimeoutProtocol


class BodyTimeoutMiddleware:
    """ASGI middleware: reading the request body waits at most `timeout` seconds per chunk; a stalled
    body is answered 408 (JSON) here, and the app is told the client went away."""

    def __init__(self, app: Callable, timeout: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        answered = False

        async def timed_receive() -> dict:
            nonlocal body_done, answered
            if body_done:  # the body is in: later receives (disconnect) wait as long as they like
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                answered = True
                detail = json.dumps({"detail": f"the request body stopped arriving for {self.timeout:g} s; "
                                               f"send the whole body at once"}).encode()
                await send({"type": "http.response.start", "status": 408,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(detail)).encode())]})
                await send({"type": "http.response.body", "body": detail})
                return {"type": "http.disconnect"}
            body_done = message.get("type") != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message: dict) -> None:
            if not answered:  # after a 408, whatever the app still says is dropped
                await send(message)

        await self.app(scope, timed_receive, guarded_send)


RESERVED_FDS = 128  # files the process keeps besides connections: model files, logs, pipes, the listening socket


def raise_file_limit() -> Optional[int]:
    """Let the process open as many sockets as the OS allows it (soft limit up to the hard one);
    returns the limit now in force (None where the platform has none)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):  # not on this platform, or not allowed: keep the limit
        return None
    return None if soft == getattr(resource, "RLIM_INFINITY", -1) else soft


def fitting_connections(requested: int, fd_limit: Optional[int]) -> int:
    """The connection cap that the file-descriptor limit allows: past it, accept() fails and the
    OS, not the cap's 503, decides who is served (1,074 half-open connections made a normal request
    time out under a 1,024 limit)."""
    if fd_limit is None:
        return requested
    return max(1, min(requested, fd_limit - RESERVED_FDS))
