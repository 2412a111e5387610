"""Many labels: peak memory and time of classifying T texts among L labels (default 200 × 1,000).

Each measurement runs in a fresh Python process (peak RSS is per process) that builds nothing but
the classifier, so the figures compare like with like:

    python benchmarks/bench_many_labels.py                      # this checkout
    python benchmarks/bench_many_labels.py --src /path/to/old   # another checkout (e.g. before a change)

The model is a tiny random BERT (UER tiny shape: 2 layers, hidden 128) with the real Chinese vocab
when ../shared/data/vocab has it (else a generated one); texts and labels are synthetic Chinese.
Prints one table row per setting; also the CPU and torch's capability.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, os.environ["NSP_SRC"])
import torch
torch.set_num_threads(int(os.environ.get("NSP_THREADS", "2")))
from nspzero import NSPClassifier
args = json.loads(sys.argv[1])
clf = NSPClassifier.from_pretrained(args["model"], device="cpu", max_length=64, batch_size=64)
texts, labels = args["texts"], args["labels"]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kwargs = {"top_k": args["top_k"]} if args["top_k"] else {}
import inspect
if kwargs and "top_k" not in inspect.signature(clf.classify).parameters:
    print(json.dumps({"unsupported": "top_k"}))
    sys.exit(0)
start = time.perf_counter()
results = clf.classify(texts, labels, template="这是一则{label}新闻", **kwargs)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "before_mib": base / 1024,
                  "first": [results[0].label, len(results[0].scores)]}))
"""

CHARS = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
         "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开"
         "它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变")


def build_model(folder: str) -> str:
    from transformers import BertConfig, BertForPreTraining, BertTokenizer

    here = os.path.dirname(os.path.abspath(__file__))
    vocab = os.path.join(here, "..", "..", "shared", "data", "vocab", "bert-base-chinese-vocab.txt")
    os.makedirs(folder, exist_ok=True)
    if os.path.isfile(vocab):
        with open(vocab, encoding="utf-8") as src, open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as dst:
            dst.write(src.read())
    else:
        tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "。", "新", "闻"] + list(dict.fromkeys(CHARS))
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as dst:
            dst.write("\n".join(tokens) + "\n")
    tokenizer = BertTokenizer.from_pretrained(folder)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=512)
    import torch

    torch.manual_seed(0)
    BertForPreTraining(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def workload(n_texts: int, n_labels: int) -> tuple[list[str], list[str]]:
    import random

    rng = random.Random(0)
    labels: list[str] = []
    seen = set()
    while len(labels) < n_labels:
        word = "".join(rng.choice(CHARS) for _ in range(rng.choice((2, 3, 4))))
        if word not in seen:
            seen.add(word)
            labels.append(word)
    texts = ["".join(rng.choice(CHARS) for _ in range(rng.randint(12, 40))) + "。" for _ in range(n_texts)]
    return texts, labels


def measure(src: str, model: str, texts, labels, top_k) -> dict:
    env = {**os.environ, "NSP_SRC": src, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = json.dumps({"model": model, "texts": texts, "labels": labels, "top_k": top_k}, ensure_ascii=False)
    out = subprocess.run([sys.executable, "-c", CHILD, args], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the measurement failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", help="checkout(s) to measure (default: this one)")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=0, help="also measure with top-k (0: no)")
    args = parser.parse_args()
    import torch

    here = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    sources = args.src or [here]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"# {args.texts} texts × {args.labels} labels = {args.texts * args.labels:,} pairs; tiny BERT (L2 H128), "
          f"max_length 64, batch 64; CPU {cpu}, {os.cpu_count()} cores, torch capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    texts, labels = workload(args.texts, args.labels)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(os.path.join(tmp, "tiny"))
        print("| checkout | top-k | time (s) | pairs/s | peak RSS (MiB) | RSS after load (MiB) |")
        print("|---|---|---|---|---|---|")
        for src in sources:
            for top_k in ([0, args.top_k] if args.top_k else [0]):
                r = measure(os.path.abspath(src), model, texts, labels, top_k)
                if "unsupported" in r:
                    print(f"| {src} | {top_k} | (no top-k in this checkout) | | | |")
                    continue
                print(f"| {src} | {top_k or '—'} | {r['seconds']:.1f} | {len(texts) * len(labels) / r['seconds']:,.0f} "
                      f"| {r['peak_mib']:.0f} | {r['before_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
