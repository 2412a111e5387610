"""How many slow clients `nspzero serve` survives: half-sent request heads and stalled bodies.

    python benchmarks/bench_slow_clients.py [--model DIR] [--clients 1000] [--header-timeout 2] [--body-timeout 2]

Starts `nspzero serve` (a tiny random BERT built here, or --model), opens N connections that send
half a request head and stop, times a normal request among them, waits past the header timeout and
counts the slow connections the server closed; then N connections that send a head and stall in the
body, times a normal request, and counts the 408 answers.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def normal_request(port: int) -> tuple[object, float]:
    body = json.dumps({"texts": ["今天比赛"], "labels": ["体育", "财经"]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/classify", data=body,
                                 headers={"content-type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return repr(exc)[:80], time.perf_counter() - start


def answer_of(sock: socket.socket) -> bytes | None:
    """What the server sent on a slow connection: b"" closed, bytes an answer, None still open."""
    sock.settimeout(0.05)
    try:
        return sock.recv(64)
    except socket.timeout:
        return None
    except OSError:
        return b""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--header-timeout", type=float, default=2.0)
    parser.add_argument("--body-timeout", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    model = args.model
    if model is None:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        from conftest import build_model_dir

        model = build_model_dir(tempfile.mkdtemp(prefix="nspzero-slow-"))
    port, n = args.port, args.clients
    server = subprocess.Popen([sys.executable, "-m", "nspzero.cli", "serve", "-m", model, "--port", str(port),
                               "--header-timeout", str(args.header_timeout), "--body-timeout", str(args.body_timeout)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        print("no slow clients: normal request", normal_request(port))
        heads = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
            heads.append(s)
        print(f"{n} half-sent heads open: normal request", normal_request(port))
        time.sleep(args.header_timeout + 1.5)
        closed = sum(answer_of(s) == b"" for s in heads)
        print(f"after the header timeout: {closed}/{n} slow connections closed by the server")
        bodies = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
                      b"content-type: application/json\r\n\r\n{\"te")  # the body stalls
            bodies.append(s)
        print(f"{n} stalled bodies open: normal request", normal_request(port))
        time.sleep(args.body_timeout + 1.5)
        answered = sum((answer_of(s) or b"").startswith(b"HTTP/1.1 408") for s in bodies)
        print(f"after the body timeout: {answered}/{n} stalled requests answered 408")
        print("afterwards: normal request", normal_request(port))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
