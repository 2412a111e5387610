"""Overhead of `classify --engine ray` against the local path on one machine (docs/cluster.md):
the same file through the CLI, locally and on a private Ray with 1, 2 and 4 actors, outputs compared.

    python benchmarks/bench_ray.py [ROWS]     # default 300 rows; a tiny random model (nspzero tiny-model)

Each figure is the wall time of the whole command (Python start-up, Ray start-up, model loads), as a
user sees it; the ratio is against the local run of the same command in the same script run.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "学校老师学生", "电竞玩家游戏", "汽车房产旅游"]


def run(cli: str, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([cli, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    return time.perf_counter() - start


def scores(path: Path) -> list[dict]:
    return [json.loads(line)["scores"] for line in path.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    cli = str(Path(sys.executable).with_name("nspzero"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "model"
        subprocess.run([cli, "tiny-model", str(model)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        src = tmp / "in.jsonl"
        src.write_text("".join(json.dumps({"id": i, "text": TEXTS[i % 6] + "一二三四五"[i % 5] * (i % 9)},
                                          ensure_ascii=False) + "\n" for i in range(rows)), encoding="utf-8")
        common = ["classify", "--model", str(model), "--labels", "体育,财经,科技", "--input", str(src), "--device", "cpu"]
        local = run(cli, [*common, "--output", str(tmp / "local.jsonl")])
        reference = scores(tmp / "local.jsonl")
        print(f"classify, {rows} rows, 3 labels, tiny model; {os.cpu_count()} CPUs")
        print(f"{'engine':<22}{'seconds':>9}{'vs local':>10}  same scores (<= 1e-5)")
        print(f"{'local':<22}{local:>9.1f}{1.0:>9.2f}x")
        for actors in (1, 2, 4):
            out = tmp / f"ray{actors}.jsonl"
            seconds = run(cli, [*common, "--output", str(out), "--engine", "ray", "--num-actors", str(actors)])
            same = all(max(abs(a[k] - b[k]) for k in a) <= 1e-5 for a, b in zip(reference, scores(out)))
            print(f"{f'ray, {actors} actor(s)':<22}{seconds:>9.1f}{seconds / local:>9.2f}x  {same}")


if __name__ == "__main__":
    main()
