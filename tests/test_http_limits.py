"""Slow clients cannot hold `nspzero serve`: half-sent heads are closed, stalled bodies get 408,
and normal requests are answered meanwhile (a real uvicorn server in a subprocess)."""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _classify(port: int) -> int:
    body = json.dumps({"texts": ["今天比赛"], "labels": ["体育", "财经"]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/classify", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status


def _received(sock: socket.socket) -> bytes:
    """Everything the server sends before it closes the connection (an answer may come in pieces)."""
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except OSError:
        pass
    return data


def test_slow_heads_are_closed_and_stalled_bodies_get_408_while_others_are_served(model_dir):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "nspzero.cli", "serve", "-m", model_dir, "--port", str(port),
                               "--header-timeout", "1", "--body-timeout", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stderr.read().decode()
                time.sleep(0.2)
        heads = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        for s in heads:
            s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        bodies = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        for s in bodies:
            s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
                      b"content-type: application/json\r\n\r\n{\"te")  # stalls
        assert _classify(port) == 200  # served while 60 slow clients hold connections
        assert all(_received(s) == b"" for s in heads)  # closed by the header timeout
        answers = [_received(s) for s in bodies]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0]
        assert b"stopped arriving" in answers[0]
        assert _classify(port) == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_max_connections_never_exceeds_what_the_fd_limit_allows():
    from nspzero.http_limits import RESERVED_FDS, fitting_connections

    assert fitting_connections(2048, 1024) == 1024 - RESERVED_FDS
    assert fitting_connections(100, 1024) == 100 and fitting_connections(100, None) == 100
    assert fitting_connections(100, 50) == 1  # never zero: one connection is always served

