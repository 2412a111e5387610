"""`classify --resume` after a kill: an uninterrupted run against a run SIGKILLed part-way and
resumed, each a fresh `nspzero classify` process on the same input (tiny random BERT from
`nspzero tiny-model`, synthetic Chinese texts), so both pay the same start-up. Every run uses the
kernels --resume pins (NSPZERO_BACKEND=torch, --compile off), so the bytes can be compared:

    python benchmarks/bench_resume.py                 # 4096 rows × 3 labels, killed after 5 of 8 shards
    python benchmarks/bench_resume.py --rows 8192 --kill-after 10

Prints the seconds of the uninterrupted run, of the killed run (until the kill) and of the
resumed run side by side, whether the resumed output equals the uninterrupted one byte for byte,
and the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "学校老师学生", "电竞玩家游戏", "汽车房产旅游"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nspzero.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "NSPZERO_BACKEND": "torch"})


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    proc = cli(args)
    _, err = proc.communicate()
    if proc.returncode:
        sys.exit(f"nspzero failed: {err}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--kill-after", type=int, default=5, help="shards (of 512 rows) saved before the kill")
    parser.add_argument("--max-length", type=int, default=32)
    opts = parser.parse_args()
    from nspzero.resume import SHARD_ROWS, progress_folder
    from nspzero.tiny_model import write_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = str(write_tiny_model(Path(tmp) / "tiny"))
        src = Path(tmp) / "in.jsonl"
        src.write_text("".join(json.dumps({"id": i, "text": f"{BASE[i % len(BASE)]}{i}" * (1 + i % 3)},
                                          ensure_ascii=False) + "\n" for i in range(opts.rows)), encoding="utf-8")
        args = ["classify", "-m", model, "-l", "体育,财经,科技", "-t", "这是一则{label}新闻",
                "--max-length", str(opts.max_length), "--device", "cpu", "--compile", "off", "-i", str(src)]
        plain, out = Path(tmp) / "plain.jsonl", Path(tmp) / "out.jsonl"
        full = timed(args + ["-o", str(plain)])

        start = time.perf_counter()
        proc = cli(args + ["-o", str(out), "--resume"])
        folder = progress_folder(out)
        while len(list(folder.glob("shard-*.jsonl"))) < opts.kill_after and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        killed = time.perf_counter() - start
        kept = len(list(folder.glob("shard-*.jsonl")))
        resumed = timed(args + ["-o", str(out), "--resume"])
        shards = -(-opts.rows // SHARD_ROWS)
        print(f"CPU: {cpu_name()}; {opts.rows} rows × 3 labels, tiny random BERT (nspzero tiny-model), "
              f"max length {opts.max_length}")
        print(f"| uninterrupted | killed after {kept}/{shards} shards | resumed | resumed / uninterrupted "
              f"| same bytes |")
        print("|---|---|---|---|---|")
        print(f"| {full:.1f} s | {killed:.1f} s | {resumed:.1f} s | {resumed / full:.2f} | "
              f"{out.read_bytes() == plain.read_bytes()} |")


if __name__ == "__main__":
    main()
