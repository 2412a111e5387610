"""Faults on the Ray engines: a SIGKILLed actor, a worker node lost from a real multi-node cluster,
a model that crashes its actor on every batch, an unreachable --ray-address, Ctrl-C.

Tests that start no Ray (or start it in a subprocess) come first, then the multi-node test (its own
cluster), then those on this module's private 2-CPU Ray. Every Ray run is bounded in time and every
process a test starts is killed by PID, also when the test fails.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
psutil = pytest.importorskip("psutil")  # Ray ships it

from nspzero import NSPClassifier  # noqa: E402
from nspzero.distributed import RayPairScorer, classify_with_ray  # noqa: E402
from nspzero.distributed import classify as ray_classify  # noqa: E402
from nspzero.distributed import common, pairs  # noqa: E402
from nspzero.errors import ClusterError, NSPZeroError  # noqa: E402
from nspzero.scorer import NSPScorer, Pair  # noqa: E402
from conftest import bounded_call  # noqa: E402

RUN_TIMEOUT = 180
LABELS = ["体育", "财经", "科技"]
BASE = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "学校老师学生", "电竞玩家游戏", "汽车房产旅游"]
TEXTS = [f"{BASE[i % len(BASE)]}{'一二三四五六七八九十'[i % 10] * (1 + i % 5)}" for i in range(48)]
TEMPLATE = "这是一则{label}新闻"


def _bounded(fn, *args, timeout: float = RUN_TIMEOUT, **kwargs):
    return bounded_call(fn, *args, timeout=timeout, **kwargs)


def _descendants(pid: int) -> list:
    """Every process below `pid` (Ray's gcs_server and raylet are children, its workers grandchildren)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _cmdline(proc) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _kill_all(pids) -> None:
    """SIGKILL each process that is still there, by PID."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pids) -> list[int]:
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    return left


class _KillWhenBusy(threading.Thread):
    """Watches this process's descendants and acts once on the first Ray worker whose title says it
    is running `busy` (e.g. `_ClassifyBatch)).submit`: a batch is being scored right now)."""

    def __init__(self, busy: str, act=None, root: int | None = None) -> None:
        super().__init__(daemon=True)
        self.busy, self.act, self.root = busy, act or (lambda proc: os.kill(proc.pid, signal.SIGKILL)), root
        self.hit: list[int] = []
        self.seen: set[int] = set()  # every actor process of that class: a restart adds one
        self.stop = threading.Event()

    def run(self) -> None:
        marker = self.busy.split(")")[0].split(".")[0]
        while not self.stop.is_set():
            for proc in _descendants(self.root or os.getpid()):
                line = _cmdline(proc)
                if marker in line and line.startswith("ray::"):
                    self.seen.add(proc.pid)
                if not self.hit and self.busy in line:
                    self.act(proc)
                    self.hit.append(proc.pid)
            time.sleep(0.02)


def _write_input(path, texts=TEXTS) -> str:
    path.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)),
                    encoding="utf-8")
    return str(path)


def _read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _assert_equals_local(rows, model_dir, texts=TEXTS):
    """Every row once, in input order, with the in-process classifier's label and scores (≤ 1e-5)."""
    local = NSPClassifier.from_pretrained(model_dir, device="cpu", max_length=64).classify(
        texts, LABELS, template=TEMPLATE)
    assert [r["id"] for r in rows] == list(range(len(texts)))
    for row, exp in zip(rows, local):
        assert (row["text"], row["label"], list(row["scores"])) == (exp.text, exp.label, list(exp.scores))
        assert max(abs(row["scores"][k] - v) for k, v in exp.scores.items()) <= 1e-5


# ---- no Ray in this process --------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_fails_in_seconds_with_one_line(model_dir, tmp_path, capsys):
    from conftest import run_cli

    assert not ray.is_initialized(), "this test must run before the module's Ray starts"
    port = _free_port()  # nothing listens there
    src = _write_input(tmp_path / "in.jsonl", TEXTS[:2])
    started = time.monotonic()
    code, _, err = _bounded(run_cli, ["classify", "--model", model_dir, "--labels", ",".join(LABELS), "--input", src,
                                      "--output", str(tmp_path / "out.jsonl"), "--engine", "ray",
                                      "--ray-address", f"127.0.0.1:{port}"], capsys, timeout=60)
    assert code == 1, err
    assert err.count("\n") == 1 and f"cannot reach Ray at 127.0.0.1:{port}" in err and "Traceback" not in err
    assert time.monotonic() - started < common.CONNECT_TIMEOUT_S + 20
    assert not ray.is_initialized() and not (tmp_path / "out.jsonl").exists()
    with pytest.raises(ClusterError, match="no answer|refused|unreachable"):
        common._check_reachable(f"ray://127.0.0.1:{port}", timeout=1)


def _wait_gone(pids, seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(pids)


def test_no_address_starts_a_private_ray_on_127_0_0_1_and_stops_it(monkeypatch):
    """A stale RAY_ADDRESS (a dead cluster) is not joined: a Ray of its own starts, and stops after."""
    assert not ray.is_initialized(), "this test must run before the module's Ray starts"
    dead = f"127.0.0.1:{_free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", dead)
    pids: list[int] = []
    try:
        with common.ray_session(None) as session:
            gcs = session.get_runtime_context().gcs_address
            temp_dir = session._private.worker.global_worker.node.get_temp_dir_path()
            pids = [p.pid for p in _descendants(os.getpid())]
            assert gcs.startswith("127.0.0.1:") and gcs != dead
            assert os.path.basename(temp_dir).startswith("nspzero-ray-")
            assert session.cluster_resources().get("CPU", 0) >= 1
        assert not ray.is_initialized()
        assert pids and _wait_gone(pids) == []  # gcs_server, raylet and workers: all stopped
        assert not os.path.exists(temp_dir)
    finally:
        _kill_all(pids)


def test_ctrl_c_during_a_ray_job_exits_130_and_leaves_no_ray_process(model_dir, tmp_path):
    """SIGINT to the driver alone (not its process group): the Ray nspzero started must still stop."""
    src = _write_input(tmp_path / "in.jsonl", TEXTS * 8)
    out = tmp_path / "out.jsonl"
    cli = os.path.join(os.path.dirname(sys.executable), "nspzero")
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{_free_port()}"}  # a stale address is not joined
    proc = subprocess.Popen([cli, "classify", "--model", model_dir, "--labels", ",".join(LABELS), "--input", src,
                             "--output", str(out), "--engine", "ray", "--max-length", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    seen: set[int] = set()
    try:
        watcher = _KillWhenBusy("_ClassifyBatch)).submit", act=lambda p: os.kill(proc.pid, signal.SIGINT),
                                root=proc.pid)
        watcher.start()
        deadline = time.monotonic() + RUN_TIMEOUT
        while not watcher.hit and proc.poll() is None and time.monotonic() < deadline:
            seen.update(p.pid for p in _descendants(proc.pid))
            time.sleep(0.05)
        watcher.stop.set()
        assert watcher.hit, f"the job ended before an actor scored a batch: {proc.poll()}"
        seen.update(p.pid for p in _descendants(proc.pid))
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert not out.exists()
        assert _wait_gone(seen) == [], [_cmdline(psutil.Process(p)) for p in _alive(seen)]
    finally:
        _kill_all([proc.pid, *seen])
        proc.wait(timeout=30)


# ---- a real multi-node cluster (Ray's simulator): a worker node lost while rows are scored ----

@pytest.fixture
def three_node_cluster(tmp_path_factory, monkeypatch):
    """A head with no CPUs and two 1-CPU worker nodes, all on 127.0.0.1 in a temp dir of their own.
    The cluster's address is not written to /tmp/ray (others' `ray.init()` would join it); every
    process it started is killed by PID afterwards, also when the test failed."""
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized(), "this test must run before the module's Ray starts"
    monkeypatch.setattr(ray._private.utils, "write_ray_address", lambda *a, **k: None)
    import ray._common.utils as ray_common_utils

    monkeypatch.setattr(ray_common_utils, "reset_ray_address", lambda *a, **k: None)
    temp_dir = str(tmp_path_factory.mktemp("rc"))
    node_args = dict(node_ip_address="127.0.0.1", temp_dir=temp_dir, object_store_memory=80 * 1024 * 1024)
    cluster = None
    pids: set[int] = set()
    try:
        with common.loopback_only():
            cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False,
                                                                        **node_args))
            workers = [cluster.add_node(num_cpus=1, **node_args) for _ in range(2)]
            cluster.wait_for_nodes(timeout=60)
            ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        assert cluster.address.startswith("127.0.0.1:")
        yield cluster, workers
    finally:
        pids.update(p.pid for p in _descendants(os.getpid()))
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            for node in [cluster.head_node, *cluster.worker_nodes]:
                for infos in node.all_processes.values():
                    pids.update(info.process.pid for info in infos)
            try:
                cluster.shutdown()
            finally:
                _kill_all(pids)


def _node_of(proc, workers):
    """The worker node whose raylet is an ancestor of `proc`."""
    raylets = {node.all_processes["raylet"][0].process.pid: node for node in workers}
    for parent in proc.parents():
        if parent.pid in raylets:
            return raylets[parent.pid]
    raise AssertionError(f"no worker node runs {_cmdline(proc)!r}")


@pytest.mark.cluster
def test_losing_a_worker_node_mid_run_still_writes_every_row_once_in_order(three_node_cluster, model_dir, tmp_path):
    cluster, workers = three_node_cluster
    src, out = _write_input(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    lost = []
    watcher = _KillWhenBusy("_ClassifyBatch)).submit",
                            act=lambda proc: (lost.append(_node_of(proc, workers)),
                                              cluster.remove_node(lost[-1], allow_graceful=False)))
    watcher.start()
    try:
        n = _bounded(classify_with_ray, src, str(out), model_dir, LABELS, template=TEMPLATE, num_actors=1,
                     device="cpu", max_length=64, rows_per_batch=4)
    finally:
        watcher.stop.set()
    assert lost and len(ray.nodes()) == 3 and sum(n["Alive"] for n in ray.nodes()) == 2  # a node really went
    assert n == len(TEXTS)
    _assert_equals_local(_read_jsonl(out), model_dir)


# ---- on this module's private 2-CPU Ray --------------------------------------------------------

@pytest.fixture(scope="module")
def two_cpu_ray():
    with common.private_ray(num_cpus=2) as session:
        yield session


def test_sigkilled_actor_of_two_is_restarted_and_the_cli_output_equals_local(two_cpu_ray, model_dir, tmp_path,
                                                                               capsys):
    from conftest import run_cli

    src = _write_input(tmp_path / "in.jsonl")
    common_args = ["classify", "--model", model_dir, "--labels", ",".join(LABELS), "--template", TEMPLATE,
                   "--input", src, "--max-length", "64", "--device", "cpu"]
    assert run_cli(common_args + ["--output", str(tmp_path / "local.jsonl")], capsys)[0] == 0
    watcher = _KillWhenBusy("_ClassifyBatch)).submit")
    watcher.start()
    try:
        code, _, err = _bounded(run_cli, common_args + ["--output", str(tmp_path / "ray.jsonl"), "--engine", "ray",
                                                        "--num-actors", "2"], capsys)
    finally:
        watcher.stop.set()
    assert watcher.hit and code == 0, err
    assert len(watcher.seen) >= 3  # two actors, and the one started in place of the killed one
    local, distributed = _read_jsonl(tmp_path / "local.jsonl"), _read_jsonl(tmp_path / "ray.jsonl")
    assert [r["id"] for r in distributed] == list(range(len(TEXTS)))
    for a, b in zip(local, distributed):
        assert (a["text"], a["label"], list(a["scores"])) == (b["text"], b["label"], list(b["scores"]))
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) <= 1e-5


def test_sigkilled_pair_actor_is_restarted_and_eval_scores_equal_local(two_cpu_ray, model_dir):
    pairs_ = [Pair(f"这是一则{label}新闻", text) for text in TEXTS for label in LABELS]
    local = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64).score(pairs_, progress=False)
    watcher = _KillWhenBusy("_PairScorerActor.score")
    watcher.start()
    try:
        with RayPairScorer(model_dir, num_actors=2, device="cpu", max_length=64, rows_per_batch=6) as engine:
            scores = _bounded(engine.score, pairs_, progress=False)
    finally:
        watcher.stop.set()
    assert watcher.hit
    assert scores == pytest.approx(local, abs=1e-5)


def test_a_model_that_crashes_its_actor_on_every_batch_fails_fast_with_one_line(two_cpu_ray, model_dir, tmp_path,
                                                                                 monkeypatch):
    def _crash(self, batch):  # local, so Ray ships it by value to the actors
        os._exit(3)  # the actor's process dies, as with a segfault or the OOM killer, on every batch

    monkeypatch.setattr(common, "MAX_RESTARTS", 1)  # the same bound, one restart (each costs seconds here)
    crashing = type("_ClassifyBatch", (ray_classify._ClassifyBatch,), {"__call__": _crash})
    monkeypatch.setattr(ray_classify, "_ClassifyBatch", crashing)
    src = _write_input(tmp_path / "in.jsonl", TEXTS[:4])
    started = time.monotonic()
    with pytest.raises(NSPZeroError) as info:
        _bounded(classify_with_ray, src, str(tmp_path / "out.jsonl"), model_dir, LABELS, device="cpu", max_length=64)
    message = str(info.value)
    assert "\n" not in message and "died" in message and f"{common.MAX_RESTARTS}" in message, message
    assert time.monotonic() - started < 120 and not (tmp_path / "out.jsonl").exists()

    def _crash_score(self, chunk, pairs_):
        os._exit(3)

    crashing_pairs = type("_PairScorerActor", (pairs._PairScorerActor,), {"score": _crash_score})
    monkeypatch.setattr(pairs, "_PairScorerActor", crashing_pairs)
    with RayPairScorer(model_dir, device="cpu", max_length=64) as engine:
        with pytest.raises(NSPZeroError) as info:
            _bounded(engine.score, [Pair("体育", "今天比赛")], progress=False)
    message = str(info.value)
    assert "\n" not in message and "died" in message and f"{common.MAX_RESTARTS}" in message, message


def test_the_driver_refuses_a_row_out_of_order_instead_of_writing_it():
    ray_classify._check_next("in.jsonl", 4, 4)
    with pytest.raises(NSPZeroError, match=r"^in.jsonl: the Ray job returned row 3 where row 2 was due; the output"):
        ray_classify._check_next("in.jsonl", 2, 1)
