"""Does a pair's int8 score depend on the pairs batched beside it? Prints, for each int8 path, the max
|ΔP(IsNext)| between a pair scored in batches of 32 (length-sorted, as every front door scores) and the
same pair scored alone, and in shuffled batches of 7, on a random-weight BERT of a real shape, and each
path's speed (pairs/s in batches of 32, best of --rounds interleaved rounds, so load on a shared machine
hits all alike).

    python benchmarks/bench_int8_batch.py --config /work/shared/data/configs/chinese_L-12_H-768_A-12.json \\
        --vocab /work/shared/data/vocab/bert-base-chinese-vocab.txt --data-dir /work/shared/data/fewclue

Paths: nspzero int8 on ONNX Runtime (per-token activation scales), the same export with ONNX Runtime's
plain per-tensor DynamicQuantizeLinear (the int8 file before issue 29), nspzero int8 on torch (per-token,
range pinned), torch's int8-dynamic (per-batch range), and fp32 for the floor of fp32 reordering.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nspzero import onnx_export  # noqa: E402
from nspzero.bench import build_random_model, load_workloads  # noqa: E402
from nspzero import cpu  # noqa: E402
from nspzero.scorer import NSPScorer  # noqa: E402


def per_tensor_folder(model_dir: str, out: str) -> str:
    """nspzero's export with ONNX Runtime's own per-tensor activation quantisation left in place."""
    keep = onnx_export.per_token_activations
    onnx_export.per_token_activations = lambda path: None
    try:
        return str(onnx_export.export_onnx(model_dir, out))
    finally:
        onnx_export.per_token_activations = keep


def moved(scorer: NSPScorer, pairs, seed: int = 0) -> tuple[float, float]:
    """(max |ΔP| alone vs batched, max |ΔP| shuffled batches of 7 vs batched)."""
    together = scorer.score(pairs)
    alone = np.array([scorer.score([p])[0] for p in pairs])
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    shuffled = np.empty(len(pairs))
    for start in range(0, len(order), 7):
        part = order[start:start + 7]
        shuffled[part] = scorer.score([pairs[i] for i in part])
    return float(np.abs(together - alone).max()), float(np.abs(together - shuffled).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--vocab")
    parser.add_argument("--data-dir")
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pairs = load_workloads(args.data_dir, ["tnews"], args.pairs)[0].pairs
    with tempfile.TemporaryDirectory(prefix="nspzero-int8-batch-") as tmp:
        os.environ.setdefault("NSPZERO_CACHE_DIR", os.path.join(tmp, "cache"))
        os.makedirs(os.path.join(tmp, "model"))
        model = build_random_model(os.path.join(tmp, "model"), args.config, args.vocab)
        old = per_tensor_folder(model, os.path.join(tmp, "per-tensor"))
        common = dict(max_length=128, batch_size=32)
        paths = {
            "fp32": NSPScorer.from_pretrained(model, **common),
            "int8, ONNX Runtime (per-token, now)": NSPScorer.from_pretrained(model, dtype="int8", **common),
            "int8, ONNX Runtime per-tensor (before)": NSPScorer.from_pretrained(old, dtype="int8", **common),
            "int8, torch (per-token, pinned range)": NSPScorer.from_pretrained(model, dtype="int8", backend="torch",
                                                                               **common),
            "int8-dynamic, torch (per-batch range)": NSPScorer.from_pretrained(model, dtype="int8-dynamic", **common),
        }
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(args.rounds):
            for name, scorer in paths.items():
                start = time.perf_counter()
                scorer.score(pairs)
                best[name] = min(best[name], time.perf_counter() - start)
        print(f"{len(pairs)} TNEWS pairs; CPU: {cpu.name()} (VNNI: {cpu.has_vnni()}, torch capability {cpu.capability()})")
        print("| path | pairs/s | ×fp32 | max |ΔP| alone vs batch of 32 | max |ΔP| shuffled batches of 7 vs 32 |")
        print("|---|---|---|---|---|")
        for name, scorer in paths.items():
            alone, shuffled = moved(scorer, pairs)
            speed = len(pairs) / best[name]
            print(f"| {name} | {speed:.1f} | {best['fp32'] / best[name]:.2f} | {alone:.1e} | {shuffled:.1e} |",
                  flush=True)


if __name__ == "__main__":
    main()
