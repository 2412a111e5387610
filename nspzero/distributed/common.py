"""What both Ray engines share: starting Ray, sizing actors, and turning errors from Ray workers
back into one nspzero line. Needs the optional extra: `pip install 'nspzero[ray]'`."""
from __future__ import annotations

import contextlib
import logging
import re
import shutil
import socket
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ..errors import ClusterError, DataError, ModelError, NSPZeroError, UsageError, failure_reason, first_line, shown
from ..extras import install_hint

log = logging.getLogger("nspzero")


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(f"Ray is not installed; the ray engine needs it: {install_hint('ray')}") from None
    return ray


_ERROR_LINE = re.compile(r"^nspzero\.errors\.(UsageError|DataError|ModelError|NSPZeroError): (.+)$", re.M)
_ERRORS = {"UsageError": UsageError, "DataError": DataError, "ModelError": ModelError, "NSPZeroError": NSPZeroError}


def _unwrap(exc: BaseException) -> Optional[NSPZeroError]:
    """The NSPZeroError raised inside a Ray worker (in `classify` or an actor's __init__), as itself.

    Ray Data re-raises a worker's error as RayTaskError(UserCodeException) or ActorDiedError whose
    chained cause does not survive the trip to the driver; only the worker's traceback text does,
    whose last line is `nspzero.errors.<Class>: <message>`."""
    seen: set[int] = set()
    stack: list[Optional[BaseException]] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NSPZeroError) and not from_ray(e):
            return type(e)(_message(e))
        cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError keeps the original here (sometimes)
        stack.extend([e.__cause__, e.__context__, cause if isinstance(cause, BaseException) else None])
    matches = _ERROR_LINE.findall(str(exc))
    if matches:
        name, message = matches[-1]
        return _ERRORS[name](message.strip())
    return None


_ANY_ERROR_LINE = re.compile(r"^\s*([\w.]*(?:Error|Exception|Invalid)): (.+)$", re.M)


def _last_error_line(exc: BaseException) -> str:
    """`Class: message` of the innermost error in a Ray error's text (its worker traceback)."""
    matches = _ANY_ERROR_LINE.findall(str(exc))
    if not matches:
        return type(exc).__name__
    name, message = matches[-1]
    return f"{name.rsplit('.', 1)[-1]}: {message.strip()}"


def from_ray(e: BaseException) -> bool:
    """Ray re-raises a worker's DataError as a class deriving from both RayTaskError and DataError,
    whose message is the whole worker traceback: such errors are unwrapped by their text."""
    return any(c.__module__.startswith("ray.") for c in type(e).__mro__)


def reraise(exc: Exception, ray: Any, what: str, error: type = DataError, hint: str = "") -> None:
    """Turn an error out of a Ray job into one nspzero error line; returns for other errors (the
    caller re-raises them as they are)."""
    inner = _unwrap(exc)
    if inner is not None:
        raise inner from None
    if _actor_died(exc):
        raise error(f"{what}: an actor's process died on every try (restarted {MAX_RESTARTS} times)"
                    f"{_exit_detail(exc)}: the model crashes its process, or it runs out "
                    f"of memory (try a smaller --batch-size or fewer --num-actors); the Ray worker logs say more{hint}"
                    ) from None
    if isinstance(exc, ray.exceptions.RayError):
        raise error(f"{what}: {_last_error_line(exc)}{hint}") from None


def _actor_died(exc: BaseException) -> bool:
    """An actor that died past its restarts (its process ended: a crash, the OOM killer, a lost node),
    as opposed to an error its own code raised."""
    return "ActorDiedError" in type(exc).__name__ or "ActorDiedError" in _last_error_line(exc) \
        or "The actor died unexpectedly" in str(exc)


_EXIT_DETAIL = re.compile(r"Worker exit type: (\w+)")


def _exit_detail(exc: BaseException) -> str:
    found = _EXIT_DETAIL.search(str(exc))
    return f" (last exit: {found.group(1)})" if found else ""


def _message(e: NSPZeroError) -> str:
    return str(e.args[0]) if e.args else str(e)


@dataclass(frozen=True)
class ActorResources:
    """How a job's CPUs are split: the read task must keep some, or a pool of one-CPU actors under
    `ray.init(num_cpus=2)` takes every CPU and the job waits forever at 0 rows."""

    read_cpus: float
    actor_cpus: float
    actor_gpus: int
    torch_threads: int


def actor_resources(total_cpus: float, num_actors: int, device: Optional[str], read: bool = True,
                    node_cpus: Optional[float] = None) -> ActorResources:
    """With `read`, reading keeps up to one CPU (half of a small cluster); the actors share the rest
    (fractions are fine: Ray only books them), each at most what one node has, and run that many
    torch threads. `cuda` devices give each actor one GPU."""
    read_cpus = round(min(1.0, total_cpus / 2), 2) if read else 0.0
    per_actor = (total_cpus - read_cpus) / num_actors
    if node_cpus:
        per_actor = min(per_actor, node_cpus - read_cpus if node_cpus - read_cpus >= 1 else node_cpus / 2)
    per_actor = round(max(0.01, per_actor), 2)
    gpus = 1 if device is not None and str(device).startswith("cuda") else 0
    return ActorResources(read_cpus, per_actor, gpus, max(1, int(per_actor)))


def cluster_resources(ray: Any, num_actors: int, device: Optional[str], read: bool) -> ActorResources:
    """`actor_resources` for the running cluster; a UsageError when its GPUs cannot hold the pool
    (Ray would wait for them forever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    res = actor_resources(float(ray.cluster_resources().get("CPU", 1.0)), num_actors, device, read,
                          max((float(n.get("CPU", 0)) for n in nodes), default=None))
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if res.actor_gpus and gpus < num_actors:
        raise UsageError(f"--device {device} gives each actor one GPU, and the Ray cluster has {gpus:g} GPUs "
                         f"for {num_actors} actors; lower --num-actors")
    return res


def actor_device(device: Optional[str]) -> str:
    """The device name for actors, resolved on the driver: inside a Ray actor its one GPU is
    always `cuda` (index 0), whatever `cuda:N` was asked for."""
    from ..scorer import resolve_device

    return "cuda" if resolve_device(device).type == "cuda" else "cpu"


# Restarts of an actor whose process or node died, before the job fails: enough for a lost node or
# an OOM kill or two, few enough that a model that crashes its actor on every batch ends the job
# within seconds instead of looping. The batch the actor was scoring is retried for as long as the
# actor is being restarted (a lost node is only declared dead after Ray's health checks, and a
# fixed number of batch retries would be spent in that time); an actor past its restarts is dead,
# and its batch fails with it.
MAX_RESTARTS = 3
CONNECT_TIMEOUT_S = 5.0  # how long a --ray-address is tried before the one-line error


def fault_tolerance() -> dict[str, int]:
    """The remote options both engines give their actors: Ray restarts an actor whose process or
    node died (on any node with room) and re-runs its lost batch there, `MAX_RESTARTS` times."""
    return {"max_restarts": MAX_RESTARTS, "max_task_retries": -1}


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray turns 127.0.0.1 into this machine's network address (so that other nodes can reach it);
    a private Ray should not be reachable from the network, so while it starts, Ray is told (as it
    tells itself on macOS/Windows) that there are no other nodes."""
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without that switch: it keeps its own choice of address
        yield
        return
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


@contextlib.contextmanager
def private_ray(num_cpus: Optional[int] = None) -> Iterator[Any]:
    """A Ray of its own on this machine, bound to 127.0.0.1, in a temp dir of its own, stopped and
    removed afterwards. Never plain `ray.init()`: that joins whatever cluster this machine ran last,
    even a dead one, and waits minutes for it."""
    ray = import_ray()
    temp_dir = tempfile.mkdtemp(prefix="nspzero-ray-")  # short: Ray's socket paths must stay < 108 chars
    try:
        with loopback_only():
            ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
                     include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise ClusterError(f"cannot start Ray on this machine: {first_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()  # stops the raylet, the GCS and every worker this Ray started
        shutil.rmtree(temp_dir, ignore_errors=True)


def _host_port(address: str) -> tuple[str, int]:
    """Where `--ray-address` points (auto: the cluster `ray start` last started here), as host, port."""
    target = address[len("ray://"):] if address.startswith("ray://") else address
    if target == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        found = canonicalize_bootstrap_address("auto")
        if not found:
            raise ClusterError("--ray-address auto: no Ray cluster was started on this machine (ray start --head); "
                               "give the head's address, or leave --ray-address out to run Ray here")
        target = found
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {shown(address)} is not HOST:PORT, ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Ray's own connect retries for minutes; a head that does not answer in `timeout` seconds is
    reported at once, naming the address tried."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, socket.timeout) else failure_reason(exc)
        raise ClusterError(f"cannot reach Ray at {host}:{port} (--ray-address {shown(address)}; tried for "
                           f"{timeout:g} s: {why}); start the head (ray start --head) or leave --ray-address out "
                           "to run Ray on this machine") from None


@contextlib.contextmanager
def _joined(address: Optional[str]) -> Iterator[Any]:
    """Ray for one job: the Ray this process already runs, the cluster at `address` (reached within
    a few seconds or not at all), or a private local one."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        with private_ray() as ray:
            yield ray
        return
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ClusterError(f"cannot join Ray at {shown(address)}: {first_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()  # disconnects; the cluster itself keeps running


@contextlib.contextmanager
def ray_session(address: Optional[str] = None) -> Iterator[Any]:
    """Ray for one job, rows kept in order: the Ray this process already runs, the cluster at
    `address`, or a private local Ray started for the job and stopped afterwards (also on Ctrl-C).
    Yields the `ray` module."""
    with _joined(address) as ray:
        ctx = ray.data.DataContext.get_current()
        saved_order = ctx.execution_options.preserve_order
        ctx.execution_options.preserve_order = True  # rows come back in the input's order
        quiet = {name: logging.getLogger(name) for name in ("ray", "ray.data")}
        saved_levels = {name: logger.level for name, logger in quiet.items()}
        for logger in quiet.values():  # Ray Data's INFO progress lines: nspzero shows its own summary line
            logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                yield ray
        finally:
            ctx.execution_options.preserve_order = saved_order
            for name, logger in quiet.items():
                logger.setLevel(saved_levels[name])


def check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


