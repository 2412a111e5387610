"""What both Ray engines share: starting Ray, sizing actors, and turning errors from Ray workers
back into one nspzero line. Needs the optional extra: `pip install 'nspzero[ray]'`."""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ..errors import DataError, ModelError, NSPZeroError, UsageError
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
    if isinstance(exc, ray.exceptions.RayError):
        raise error(f"{what}: {_last_error_line(exc)}{hint}") from None


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


@contextlib.contextmanager
def ray_session(address: Optional[str] = None) -> Iterator[Any]:
    """Ray for one job, rows kept in order: joins a running Ray, or starts a local one (or connects
    to `address`) and shuts it down afterwards. Yields the `ray` module."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UsageError(f"cannot start or reach Ray{f' at {address!r}' if address else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        started = True
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
        if started:
            ray.shutdown()


def check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


