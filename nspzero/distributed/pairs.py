"""`nspzero eval --engine ray`: the harness's pair scoring spread over a pool of persistent Ray actors."""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

from ..errors import ModelError, NSPZeroError
from ..scorer import Pair
from .common import actor_device, check_positive, cluster_resources, fault_tolerance, from_ray, import_ray, reraise

if TYPE_CHECKING:
    import numpy as np


class _PairScorerActor:
    """A Ray actor holding one NSPScorer; kept alive across the harness's calls."""

    def __init__(self, model: str, device: Optional[str], max_length: int, batch_size: int, dtype: str,
                 torch_threads: int, compile: Union[bool, str] = False) -> None:
        import torch

        torch.set_num_threads(torch_threads)
        from ..scorer import NSPScorer

        self.scorer = NSPScorer.from_pretrained(model, device=device, max_length=max_length,
                                                batch_size=batch_size, dtype=dtype, compile=compile)

    def score(self, chunk: int, pairs: list[Pair]) -> tuple[int, "np.ndarray", int]:
        """(chunk, scores, pairs truncated): the driver words the one truncation warning."""
        cut: list[int] = []
        return chunk, self.scorer.score(pairs, progress=False, on_truncated=lambda n, _: cut.append(n)), sum(cut)


class RayPairScorer:
    """`NSPScorer.score` spread over a pool of Ray actors, for the harness (`nspzero eval --engine ray`).

    Same signature and the same scores (the scorer is batch-invariant), and one truncation warning
    per call, on the driver. The actors (each loading the model once) start on the first call and
    live until `close()`, so the harness's many calls (per task, per split) pay for the model load once. `on_batch` runs on the driver as each chunk comes
    back, so the harness's cache keeps finished work. Use it inside `ray_session()`.
    """

    def __init__(self, model: str, num_actors: int = 1, device: Optional[str] = None, max_length: int = 128,
                 batch_size: int = 32, dtype: str = "float32", rows_per_batch: int = 512,
                 compile: Union[bool, str] = False) -> None:
        check_positive(num_actors=num_actors, rows_per_batch=rows_per_batch, batch_size=batch_size,
                        max_length=max_length)
        import_ray()  # fail before any model is loaded
        self.model, self.num_actors, self.device = model, num_actors, actor_device(device)
        self.max_length, self.batch_size, self.dtype = max_length, batch_size, dtype
        self.rows_per_batch, self.compile = rows_per_batch, compile
        self._actors: list[Any] = []

    def __enter__(self) -> "RayPairScorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the actors (a Ray started for the job stops them anyway; a shared cluster does not)."""
        if self._actors:
            ray = import_ray()
            for actor in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
            self._actors = []

    def _pool(self):
        ray = import_ray()
        from ray.util import ActorPool

        if not self._actors:
            res = cluster_resources(ray, self.num_actors, self.device, read=False)
            actor_class = ray.remote(num_cpus=res.actor_cpus, num_gpus=res.actor_gpus,
                                     **fault_tolerance())(_PairScorerActor)  # restarted if its process dies
            self._actors = [actor_class.remote(self.model, self.device, self.max_length, self.batch_size,
                                               self.dtype, res.torch_threads, self.compile)
                            for _ in range(self.num_actors)]
        return ActorPool(self._actors)

    def score(self, pairs: Sequence[Pair], progress: Optional[bool] = None,
              on_batch: Optional[Callable[[list[Pair], "np.ndarray"], None]] = None,
              desc: str = "scoring", on_truncated: Optional[Callable[[int, int], None]] = None) -> "np.ndarray":
        from ..scorer import score_distinct

        ray = import_ray()
        try:
            return score_distinct(list(pairs), self._score_chunks, self.max_length, progress, on_batch, desc,
                                  on_truncated)
        except Exception as exc:
            if isinstance(exc, NSPZeroError) and not from_ray(exc):
                raise
            self.close()
            reraise(exc, ray, "the Ray scoring job failed", ModelError)
            raise

    def _score_chunks(self, unique: list[Pair], origin: list[int], on_truncated: Callable[[int, int], None]
                      ) -> Iterator[tuple[list[int], "np.ndarray"]]:
        """(indexes into `unique`, their scores) as the actors finish chunks of similar length (so
        each actor's batches pad little; the scorer sorts within a chunk); then the pairs truncated."""
        order = sorted(range(len(unique)), key=lambda i: len(unique[i].first) + len(unique[i].second))
        size = self.rows_per_batch
        chunks = [order[i:i + size] for i in range(0, len(order), size)]
        pool = self._pool()
        for n, chunk in enumerate(chunks):
            pool.submit(lambda actor, job: actor.score.remote(*job), (n, [unique[i] for i in chunk]))
        cut = 0
        while pool.has_next():
            n, chunk_scores, chunk_cut = pool.get_next_unordered()
            cut += chunk_cut
            yield chunks[n], chunk_scores
        on_truncated(cut, len(unique))
