"""Load benchmark of `nspzero serve` (not a test): concurrent clients against the same requests sent serially.

    python benchmarks/bench_serve.py                          # a tiny random BERT built here
    python benchmarks/bench_serve.py --model path/to/bert --clients 8 --requests 10 --texts 4 --prompt tnews

It starts the server (the same `create_app` as `nspzero serve`, under uvicorn) on 127.0.0.1 in a
subprocess and sends every request once serially (one at a time, after a warm-up) to a server
started with no micro-batching window (`window_ms=0`: the baseline does the same work without
waiting for company that never comes), then, to a server with the `--window-ms` window, serially
once more (what the window costs a lone client) and from `--clients` concurrent clients each
sending `--requests` requests back to back. It prints requests/s, pairs/s and p50/p99 latency of
each, and the concurrent throughput over the window-free serial baseline. It checks that every request
was answered with 200 and that the concurrent results equal the serial ones (|Δp| ≤ 1e-5, same
labels). Counts are bounded and the whole run has a time limit; it only talks to localhost.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Iterator

MAX_CLIENTS, MAX_REQUESTS_TOTAL, MAX_TEXTS = 64, 2000, 64


def build_tiny_model(directory: str, hidden: int, layers: int) -> str:
    """A small random BertForPreTraining (NSP head included) with a character vocab of the texts used here."""
    from nspzero.bench import build_random_model

    config = {"vocab_size": 1024, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 2,
              "intermediate_size": hidden * 4, "max_position_embeddings": 512}
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return build_random_model(directory, path, None)  # (save_pretrained rewrites config.json)


def make_requests(n: int, texts_per_request: int, prompt: str) -> list[dict]:
    """`n` distinct requests of `texts_per_request` texts each, classified with a named prompt set."""
    from nspzero.bench import SYNTHETIC

    out = []
    for i in range(n):
        texts = [f"{SYNTHETIC[(i + j) % len(SYNTHETIC)]}{i}-{j}" for j in range(texts_per_request)]
        out.append({"texts": texts, "prompt": prompt})
    return out


def pairs_of(request: dict) -> int:
    from nspzero.prompt_sets import load_prompt

    variant = load_prompt(request["prompt"])
    per_text = sum(len(ws) for ws in variant.words.values()) * len(variant.templates)
    return per_text * len(request["texts"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, args, log_path: str, window_ms: float) -> subprocess.Popen:
    code = (
        "import uvicorn\n"
        "from nspzero import NSPClassifier\n"
        "from nspzero.serve import create_app\n"
        f"clf = NSPClassifier.from_pretrained({model!r}, device={args.device!r}, max_length={args.max_length}, "
        f"batch_size={args.batch_size}, dtype={args.dtype!r})\n"
        f"app = create_app(clf, window_ms={window_ms}, max_batch_pairs={args.max_batch_pairs})\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(url: str, proc: subprocess.Popen, log_path: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{open(log_path, errors='replace').read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


async def run_serial(url: str, requests: list[dict], deadline: float) -> tuple[list, list[float], float]:
    import httpx

    results, latencies = [], []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        start = time.perf_counter()
        for body in requests:
            if time.monotonic() > deadline:
                raise SystemExit("time limit reached during the serial pass; use fewer or smaller requests")
            t0 = time.perf_counter()
            r = await client.post("/classify", json=body)
            latencies.append(time.perf_counter() - t0)
            results.append((r.status_code, r.json()))
        return results, latencies, time.perf_counter() - start


async def run_concurrent(url: str, requests: list[dict], clients: int, deadline: float):
    import httpx

    results: list = [None] * len(requests)
    latencies: list[float] = [0.0] * len(requests)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one_client(c: int) -> None:
            for i in range(c, len(requests), clients):  # each client sends its share back to back
                t0 = time.perf_counter()
                r = await client.post("/classify", json=requests[i])
                latencies[i] = time.perf_counter() - t0
                results[i] = (r.status_code, r.json())

        start = time.perf_counter()
        remaining = max(1.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(asyncio.gather(*(one_client(c) for c in range(clients))), remaining)
        except asyncio.TimeoutError:
            raise SystemExit("time limit reached during the concurrent pass") from None
        return results, latencies, time.perf_counter() - start


@contextlib.contextmanager
def serving(model: str, args, tmp: str, deadline: float, window_ms: float) -> Iterator[str]:
    """A warmed-up server with this micro-batching window, as a base URL; stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = os.path.join(tmp, f"server-{window_ms:g}ms.log")
    proc = start_server(model, port, args, log_path, window_ms)
    try:
        wait_ready(url, proc, log_path, timeout=min(120.0, args.time_limit))
        asyncio.run(run_serial(url, make_requests(3, args.texts, args.prompt), deadline))  # warm-up
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        proc.kill()   # nothing happens once it has exited
        proc.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def compare(serial: list, concurrent: list) -> tuple[int, float]:
    """(mismatched requests, max |Δp|) between the two passes; every request must have a 200."""
    bad, worst = 0, 0.0
    for (s_status, s_body), (c_status, c_body) in zip(serial, concurrent):
        if s_status != 200 or c_status != 200:
            bad += 1
            continue
        for a, b in zip(s_body["results"], c_body["results"]):
            delta = max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"])
            worst = max(worst, delta)
            if a["label"] != b["label"] or a["text"] != b["text"] or list(a["scores"]) != list(b["scores"]) \
                    or delta > 1e-5:
                bad += 1
                break
    return bad, worst


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model directory or hub name (default: a tiny random BERT built here)")
    ap.add_argument("--clients", type=int, default=8, help=f"concurrent clients (≤ {MAX_CLIENTS})")
    ap.add_argument("--requests", type=int, default=6, help="requests per client")
    ap.add_argument("--texts", type=int, default=2, help=f"texts per request (≤ {MAX_TEXTS})")
    ap.add_argument("--prompt", default="tnews", help="prompt set giving labels and template (default tnews: 15 labels)")
    ap.add_argument("--window-ms", type=float, default=5, help="the server's micro-batching window")
    ap.add_argument("--max-batch-pairs", type=int, default=2048)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hidden", type=int, default=128, help="hidden size of the random model")
    ap.add_argument("--layers", type=int, default=2, help="layers of the random model")
    ap.add_argument("--time-limit", type=float, default=300, help="seconds for the whole run")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or args.requests < 1 or not 1 <= args.texts <= MAX_TEXTS \
            or args.clients * args.requests > MAX_REQUESTS_TOTAL:
        ap.error(f"need 1 ≤ clients ≤ {MAX_CLIENTS}, 1 ≤ texts ≤ {MAX_TEXTS}, clients × requests ≤ {MAX_REQUESTS_TOTAL}")
    deadline = time.monotonic() + args.time_limit

    requests = make_requests(args.clients * args.requests, args.texts, args.prompt)
    n_pairs = sum(pairs_of(r) for r in requests)
    with tempfile.TemporaryDirectory(prefix="nspzero-bench-serve-") as tmp:
        model = args.model or build_tiny_model(os.path.join(tmp, "model"), args.hidden, args.layers)
        with serving(model, args, tmp, deadline, window_ms=0) as url:   # the baseline: no window to wait out
            serial, s_lat, s_time = asyncio.run(run_serial(url, requests, deadline))
        with serving(model, args, tmp, deadline, window_ms=args.window_ms) as url:
            _, w_lat, w_time = asyncio.run(run_serial(url, requests, deadline))
            conc, c_lat, c_time = asyncio.run(run_concurrent(url, requests, args.clients, deadline))

    bad, worst = compare(serial, conc)
    answered = sum(1 for s, _ in conc if s == 200)
    rows = []
    for name, lat, secs in (("serial, no window (1 client)", s_lat, s_time),
                            (f"serial, {args.window_ms:g} ms window (1 client)", w_lat, w_time),
                            (f"concurrent, {args.window_ms:g} ms window ({args.clients} clients)", c_lat, c_time)):
        rows.append({"mode": name, "requests": len(lat), "seconds": secs, "requests_per_s": len(lat) / secs,
                     "pairs_per_s": n_pairs / secs, "p50_ms": 1000 * statistics.median(lat),
                     "p99_ms": 1000 * percentile(lat, 99)})
    ratio = rows[2]["requests_per_s"] / rows[0]["requests_per_s"]
    shape = f"{args.hidden}x{args.layers} random" if not args.model else args.model
    print(f"model: {shape}; {len(requests)} requests × {args.texts} texts, prompt {args.prompt} "
          f"({n_pairs} pairs in all); window {args.window_ms:g} ms; max_length {args.max_length}; "
          f"{os.cpu_count()} CPUs")
    print("| mode | requests | seconds | requests/s | pairs/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['requests']} | {r['seconds']:.2f} | {r['requests_per_s']:.1f} | "
              f"{r['pairs_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    print(f"concurrent / serial (no window) throughput: {ratio:.2f}x; answered {answered}/{len(requests)}; "
          f"results equal to serial: {len(requests) - bad}/{len(requests)} (max |Δp| {worst:.1e})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"settings": vars(args), "pairs": n_pairs, "rows": rows, "ratio": ratio, "answered": answered,
                       "mismatches": bad, "max_abs_delta": worst}, handle, indent=2)
    if bad or answered != len(requests):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
