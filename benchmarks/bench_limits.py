"""Cost of nspzero's input limits (docs/limits.md): windows of a long text, and labels files.

    python benchmarks/bench_limits.py VOCAB_FOLDER   # a folder holding a BERT vocab.txt
"""
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertTokenizerFast

from nspzero.label_files import read_labels_file
from nspzero.windows import split_windows


def windows(tokenizer, chars: int) -> None:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = ("今天的比赛非常精彩，球员们表现出色。" * (chars // 18 + 1))[:chars]
    start = time.perf_counter()
    pieces = split_windows(tokenizer, text, 125, 32)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{chars:,} characters: {len(pieces):,} windows, {seconds:.1f} s, peak RSS +{(peak - base) / 1024:.0f} MiB")


def labels_file(suffix: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"labels{suffix}"
        if suffix == ".txt":
            path.write_text("".join(f"标签{i}\t词{i}|语{i}\t这是一则关于标签{i}的新闻。\n" for i in range(n)), "utf-8")
        else:
            path.write_text("".join(f"标签{i}: {{words: [词{i}, 语{i}], description: 这是一则关于标签{i}的新闻。}}\n"
                                    for i in range(n)), "utf-8")
        start = time.perf_counter()
        read_labels_file(str(path))
        print(f"{n:,} labels ({suffix}): {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}")
    tok = BertTokenizerFast.from_pretrained(sys.argv[1])
    for size in (250_000, 1_000_000):
        windows(tok, size)
    for suffix in (".txt", ".yaml"):
        labels_file(suffix, 20_000)
