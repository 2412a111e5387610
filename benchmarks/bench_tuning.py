"""NSP-tuning speed: nspzero's trainer against a plain transformers training loop on the same batches.

    python benchmarks/bench_tuning.py --config path/to/bert_config.json [--vocab vocab.txt]
           [--texts 16] [--labels 15] [--rounds 2] [--threads 2]

The model is a BertForPreTraining with random weights in the config's shape (e.g. BERT-base,
chinese_L-12_H-768_A-12.json); texts are synthetic Chinese of news-title length (~24 characters),
the request TNEWS-like (`--labels` two-character label words, "这是一则{label}新闻"), batches of 8
texts (all their label pairs), max length 128, lr 1e-5: the paper's TNEWS recipe. Every measurement
runs in a fresh Python process (peak RSS is per process), nspzero and the plain loop alternating;
each runs two epochs over the texts and times the second (the first warms up; setup is not timed).

Prints, per round: tuning pairs/s of both and their ratio, peak RSS of both; the median ratio; the
scoring rate (pairs/s, for the dev split's per-epoch accuracy); the projected time of the paper's
TNEWS setting (1,185 texts x 15 labels x 10 epochs, 1,098 dev texts scored per epoch) on this CPU;
and bf16 autocast training against fp32 (same init, same batches): its speed and how far its
scores move from fp32's after the same steps.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, os.environ["NSP_SRC"])
import numpy as np
import torch
torch.set_num_threads(int(os.environ["NSP_THREADS"]))
from transformers import BertConfig, BertForPreTraining, BertTokenizer
from nspzero.request import build_request
from nspzero.scorer import NSPScorer
from nspzero.tuning import TuneSettings, tune

args = json.loads(sys.argv[1])
tokenizer = BertTokenizer.from_pretrained(args["vocab_dir"])
config = BertConfig.from_json_file(args["config"])
rng = np.random.default_rng(0)
chars = [c for c in args["chars"]]
words = [chars[2 * i] + chars[2 * i + 1] for i in range(args["labels"])]
texts = ["".join(rng.choice(chars, size=int(rng.integers(18, 30)))) for _ in range(args["texts"])]
targets = [words[i % len(words)] for i in range(args["texts"])]
request = build_request(words, template="这是一则{label}新闻")
settings = TuneSettings(epochs=1, learning_rate=1e-5, batch_size=8, seed=0, max_length=128)


def fresh():
    return BertForPreTraining.from_pretrained(args["vocab_dir"]).eval()


def fresh_scorer():
    return NSPScorer.from_pretrained(args["vocab_dir"], device="cpu", max_length=128, batch_size=32)


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


pairs = args["texts"] * args["labels"]
out = {}
if args["mode"] == "build":  # one random init, saved: every child starts from the same weights
    torch.manual_seed(0)
    BertForPreTraining(config).save_pretrained(args["vocab_dir"])
elif args["mode"] == "nspzero":  # two epochs: the first warms up, the second is timed (its own record)
    scorer = fresh_scorer()
    report = tune(scorer, request, texts, targets, TuneSettings(epochs=2, learning_rate=1e-5, batch_size=8, seed=0,
                                                                max_length=128), progress=False)
    out["pairs_per_s"] = pairs / report.epochs[1].seconds
    scored = [p for t in texts for p in request.candidates(t).pairs]
    start = time.perf_counter()
    scorer.score(scored, progress=False)
    out["score_pairs_per_s"] = len(scored) / (time.perf_counter() - start)
elif args["mode"] == "plain":  # the same two epochs, the same shuffled batches (numpy's permutation of seed 0)
    model = fresh()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    order = np.random.default_rng(0)
    torch.manual_seed(0)

    def epoch():
        model.train()
        shuffled = order.permutation(len(texts)).tolist()
        for at in range(0, len(shuffled), 8):
            firsts, seconds, y = [], [], []
            for i in shuffled[at:at + 8]:
                for word in words:
                    firsts.append(f"这是一则{word}新闻")
                    seconds.append(texts[i])
                    y.append(1.0 if word == targets[i] else 0.0)
            batch = tokenizer(firsts, seconds, padding=True, truncation="only_second", max_length=128,
                              return_tensors="pt")
            optimizer.zero_grad(set_to_none=True)
            logits = model(**batch).seq_relationship_logits
            p = torch.softmax(logits.float(), -1)[:, 0]
            loss = torch.nn.functional.binary_cross_entropy(p, torch.tensor(y))
            loss.backward()
            optimizer.step()
        model.eval()

    epoch()
    start = time.perf_counter()
    epoch()
    out["pairs_per_s"] = pairs / (time.perf_counter() - start)
else:  # bf16 against fp32: same init, same batches; scores of every pair after the same steps
    probe = [p for t in texts for p in request.candidates(t).pairs]
    for name, bf16 in (("fp32", False), ("bf16", True)):
        scorer = fresh_scorer()
        report = tune(scorer, request, texts, targets, TuneSettings(epochs=1, learning_rate=1e-5, batch_size=8,
                                                                    seed=0, bf16=bf16), progress=False)
        out[name + "_pairs_per_s"] = pairs / report.epochs[0].seconds
        out[name + "_scores"] = scorer.score(probe, progress=False).tolist()
        del scorer
    diff = np.abs(np.array(out.pop("fp32_scores")) - np.array(out["bf16_scores"]))
    out.pop("bf16_scores")
    out["max_abs_score_diff"], out["mean_abs_score_diff"] = float(diff.max()), float(diff.mean())
out["peak_mib"] = peak_mib()
print(json.dumps(out))
"""

CJK = "".join(chr(c) for c in range(0x4E00, 0x9FA6))


def write_vocab(folder: str, size: int, vocab: str | None) -> str:
    """vocab.txt in `folder`: the given file, or [PAD]/[UNK]/[CLS]/[SEP]/[MASK] + CJK characters up to `size`."""
    os.makedirs(folder, exist_ok=True)
    if vocab:  # copied as it is: splitlines() would also split at U+0085/U+2028 inside tokens
        with open(vocab, encoding="utf-8", newline="") as handle:
            lines = handle.read().rstrip("\n").split("\n")
    else:
        lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(CJK[: size - 5])
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8", newline="") as handle:
        handle.write("\n".join(lines) + "\n")
    return "".join(t for t in lines if len(t) == 1 and "\u4e00" <= t <= "\u9fa5")


def run_child(args: argparse.Namespace, mode: str, vocab_dir: str, chars: str) -> dict:
    env = dict(os.environ, NSP_SRC=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
               NSP_THREADS=str(args.threads))
    payload = json.dumps({"mode": mode, "config": args.config, "vocab_dir": vocab_dir, "chars": chars[:3000],
                          "texts": args.texts, "labels": args.labels})
    done = subprocess.run([sys.executable, "-c", CHILD, payload], env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    if done.returncode:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a BERT config.json (the shape; weights are random)")
    parser.add_argument("--vocab", help="vocab.txt (default: generated CJK characters, the config's vocab_size)")
    parser.add_argument("--texts", type=int, default=16, help="texts a measured epoch (8 a step; a warm-up epoch first)")
    parser.add_argument("--labels", type=int, default=15, help="labels (TNEWS: 15)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a child may run")
    parser.add_argument("--no-bf16", action="store_true", help="skip bf16-vs-fp32")
    args = parser.parse_args()
    import tempfile

    import torch

    from nspzero import cpu

    with open(args.config, encoding="utf-8") as handle:
        shape = json.load(handle)
    print(f"CPU: {cpu.name()} ({os.cpu_count()} cores visible, {args.threads} threads), torch {torch.__version__}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"shape: {os.path.basename(args.config)} (layers {shape['num_hidden_layers']}, hidden {shape['hidden_size']}); "
          f"{args.texts} texts x {args.labels} labels = {args.texts * args.labels} pairs a measurement, batch 8 texts")
    with tempfile.TemporaryDirectory() as tmp:
        chars = write_vocab(tmp, shape["vocab_size"], args.vocab)
        run_child(args, "build", tmp, chars)
        ratios, scoring, rates = [], [], []
        print("round | plain pairs/s | nspzero pairs/s | ratio | plain peak MiB | nspzero peak MiB")
        for r in range(1, args.rounds + 1):
            plain = run_child(args, "plain", tmp, chars)
            ours = run_child(args, "nspzero", tmp, chars)
            ratios.append(ours["pairs_per_s"] / plain["pairs_per_s"])
            scoring.append(ours["score_pairs_per_s"])
            rates.append(ours["pairs_per_s"])
            print(f"{r} | {plain['pairs_per_s']:.2f} | {ours['pairs_per_s']:.2f} | {ratios[-1]:.2f}x | "
                  f"{plain['peak_mib']:.0f} | {ours['peak_mib']:.0f}", flush=True)
        rate, score_rate = statistics.median(rates), statistics.median(scoring)
        print(f"median ratio nspzero/plain: {statistics.median(ratios):.2f}x; scoring {score_rate:.1f} pairs/s")
        train_pairs, dev_pairs = 1185 * 15 * 10, 1098 * 15 * 10
        hours = (train_pairs / rate + dev_pairs / score_rate) / 3600
        print(f"projected TNEWS recipe (1,185 texts x 15 labels x 10 epochs = {train_pairs:,} training pairs at "
              f"{rate:.1f}/s, + {dev_pairs:,} dev pairs scored at {score_rate:.1f}/s): {hours:.1f} h on this CPU")
        if not args.no_bf16:
            b = run_child(args, "bf16", tmp, chars)
            print(f"bf16 autocast: {b['bf16_pairs_per_s']:.2f} pairs/s vs fp32 {b['fp32_pairs_per_s']:.2f} "
                  f"({b['bf16_pairs_per_s'] / b['fp32_pairs_per_s']:.2f}x); P(IsNext) after the same "
                  f"{-(-args.texts // 8)} steps: max |bf16 - fp32| {b['max_abs_score_diff']:.2e}, "
                  f"mean {b['mean_abs_score_diff']:.2e} (peak {b['peak_mib']:.0f} MiB, two models in turn)")


if __name__ == "__main__":
    main()
