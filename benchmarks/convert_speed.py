"""Conversion time and peak memory for a BERT-base-shaped checkpoint (random weights), Google TF1 bundle
and UER-py .bin, plus the in-memory load of the Google folder (what `--model chinese_L-12_H-768_A-12` does).

    python benchmarks/convert_speed.py [--config /work/shared/data/configs/chinese_L-12_H-768_A-12.json]
                                       [--vocab /work/shared/data/vocab/bert-base-chinese-vocab.txt]
                                       [--workdir /tmp]

Each measured step runs in a fresh Python process, so its peak RSS (VmHWM) is its own; the
baseline line is a process that only imports torch, transformers and nspzero. Files (~1.7 GB) go to
a temporary folder under --workdir, removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = "/work/shared/data"

CHILD = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    import torch, transformers, nspzero
    from nspzero.formats.checkpoints import convert_checkpoint
    from nspzero.loading import load_nsp_model
    imported = time.perf_counter()
    step, args = sys.argv[1], sys.argv[2:]
    if step == "convert":
        convert_checkpoint(args[0], args[1], vocab=args[2] if len(args) > 2 else None)
    elif step == "load":
        load_nsp_model(args[0])
    done = time.perf_counter()
    # VmHWM is this process's own peak (ru_maxrss would start from the parent's at fork)
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": round(done - imported, 2), "peak_rss_mb": round(hwm / 1024)}))
""")


def child(*argv: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"step {argv} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(SHARED, "configs", "chinese_L-12_H-768_A-12.json"))
    parser.add_argument("--vocab", default=os.path.join(SHARED, "vocab", "bert-base-chinese-vocab.txt"))
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    args = parser.parse_args()

    import torch
    from transformers import BertConfig, BertForPreTraining

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import checkpoint_writers
    import crc32c as crc32c_package
    from nspzero import cpu
    from nspzero.formats import tf_bundle

    checkpoint_writers.crc32c = tf_bundle.crc32c  # the tests' pure-Python crc is too slow for 400 MB

    with open(args.config) as handle:
        config = BertConfig(**json.load(handle))
    torch.manual_seed(0)
    model = BertForPreTraining(config).eval()
    work = tempfile.mkdtemp(prefix="nspzero-convert-bench-", dir=args.workdir)
    try:
        google = os.path.join(work, "chinese_L-12_H-768_A-12")
        t0 = time.perf_counter()
        checkpoint_writers.write_google_bert(google, model, args.vocab)
        t1 = time.perf_counter()
        uer = os.path.join(work, "mixed_corpus_bert_base_model.bin")
        torch.save(checkpoint_writers.uer_state(model), uer)
        size = lambda p: sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p)) if os.path.isdir(p) \
            else os.path.getsize(p)
        print(f"model: {os.path.basename(args.config)} (random weights), {sum(p.numel() for p in model.parameters()):,} "
              f"parameters; Google bundle {size(google) / 1e6:.0f} MB (written in {t1 - t0:.1f} s), "
              f"UER .bin {size(uer) / 1e6:.0f} MB")
        del model
        print(f"CPU: {cpu.name()}; torch {torch.__version__}, cpu capability "
              f"{cpu.capability()}; {os.cpu_count()} cores visible")
        crc_data = os.urandom(64 * 1024 * 1024)
        t0 = time.perf_counter()
        tf_bundle.crc32c(crc_data)
        print(f"crc32c (crc32c package, hardware={crc32c_package.hardware_based}): {64 / (time.perf_counter() - t0):.0f} MB/s")
        del crc_data
        rows = [("baseline (imports only)", child("none")),
                ("convert Google bundle → transformers folder", child("convert", google, os.path.join(work, "out-g"))),
                ("convert UER .bin → transformers folder", child("convert", uer, os.path.join(work, "out-u"), args.vocab)),
                ("load Google folder in memory (load_nsp_model)", child("load", google)),
                ("load converted folder (load_nsp_model)", child("load", os.path.join(work, "out-g")))]
        print("| step | seconds | peak RSS (MB) |\n|---|---|---|")
        for name, row in rows:
            print(f"| {name} | {row['seconds']} | {row['peak_rss_mb']} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
