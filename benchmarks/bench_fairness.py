"""How long a small request waits while a big one is scored (nspzero serve's fair pieces).

    python benchmarks/bench_fairness.py [--model DIR] [--big-pairs 200000]

Runs the app in-process (ASGI, no sockets) on a tiny random BERT built here (or --model), sends
one big request (texts × labels × templates ≈ --big-pairs pairs), then, 2 s later (while it is
being scored), a small request (2 texts × 2 labels), and prints the small request's latency and the big one's
total time. Name the CPU and torch.backends.cpu.get_cpu_capability() beside the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--big-pairs", type=int, default=200_000)
    parser.add_argument("--max-batch-pairs", type=int, default=2048,
                        help="pairs per scoring batch (a huge value scores a request whole: the old behaviour)")
    args = parser.parse_args()
    import httpx
    import torch

    from nspzero import NSPClassifier
    from nspzero.serve import create_app

    model = args.model
    if model is None:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        from conftest import build_model_dir

        model = build_model_dir(tempfile.mkdtemp(prefix="nspzero-fair-"))
    clf = NSPClassifier.from_pretrained(model, device="cpu", max_length=32, batch_size=64)
    labels = [f"标签{i}" for i in range(250)]
    templates = ["这是{label}", "关于{label}", "{label}新闻", "一则{label}"]
    n_texts = max(1, args.big_pairs // (len(labels) * len(templates)))
    big = {"texts": [f"今天比赛球队赢了{i}" for i in range(n_texts)], "labels": labels, "template": templates}
    small = {"texts": ["市场上涨", "公司发布手机"], "labels": ["体育", "财经"]}
    app = create_app(clf, max_texts=max(256, n_texts), max_labels=256, max_pairs=10**7,
                     max_batch_pairs=args.max_batch_pairs)

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://nspzero", timeout=None) as client:
                start = time.perf_counter()
                big_task = asyncio.ensure_future(client.post("/classify", json=big))
                await asyncio.sleep(2.0)  # the big request is being scored by now
                sent = time.perf_counter()
                r = await client.post("/classify", json=small)
                small_s = time.perf_counter() - sent
                big_r = await big_task
                return small_s, time.perf_counter() - start, r.status_code, big_r.status_code

    small_s, big_s, small_code, big_code = asyncio.run(run())
    print(f"CPU: {platform.processor() or platform.machine()}, torch capability "
          f"{torch.backends.cpu.get_cpu_capability()}, threads {torch.get_num_threads()}")
    print(f"big request: {n_texts} texts × {len(labels)} labels × {len(templates)} templates = "
          f"{n_texts * len(labels) * len(templates)} pairs, {big_s:.1f} s (HTTP {big_code})")
    print(f"small request sent while the big one was being scored: answered in {small_s:.2f} s (HTTP {small_code})")


if __name__ == "__main__":
    main()
