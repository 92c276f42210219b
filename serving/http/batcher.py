"""Continuous batching inside the service process: articles of concurrent requests are scored
together, and each article crosses the HTTP layer once.

Every request puts one job (its validated articles and the parts to compute) on a queue and
awaits its results. One consumer takes what is queued, up to ``max_batch_size`` articles and
up to ``budget()`` work units (about a second of work, once the service rate is known), and
scores it on the scoring thread, one Analyzer call per set of parts. A request larger than
that is scored a piece at a time (at least one article each), and each next piece queues
behind the requests that came meanwhile, so a large request cannot hold small ones back for
its whole duration, and a caller who leaves stops its work within about a piece. It never
waits to fill a batch: a lone request is scored at once, and the requests that arrive while
a batch runs form the next one, so batches grow with the load and the latency of a quiet
service stays that of one request. A job whose caller has gone (its
request timed out or disconnected, so its future was cancelled) before its next batch starts
is dropped unscored. When a batch fails, each of its jobs is scored again alone, so one bad
request fails only itself.

This replaces a batchable BentoML route called over BentoML's in-process HTTP client, which
parsed and validated every article a second time and kept the queue wait it had learned under
load for minutes after the load ended.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Score = Callable[[Sequence[Any], tuple[str, ...]], list[dict[str, Any]]]


@dataclass
class _Job:
    """A request's articles; ``start:stop`` is the piece to score next, ``done`` the results
    of the pieces scored."""

    articles: Sequence[Any]
    tasks: tuple[str, ...]
    future: asyncio.Future
    start: int = 0
    stop: int = 0
    done: list[dict[str, Any]] = field(default_factory=list)

    @property
    def piece(self) -> Sequence[Any]:
        return self.articles[self.start : self.stop]


def _answer(
    job: _Job, result: list[dict[str, Any]] | None = None, exception: Exception | None = None
) -> None:
    """Resolve a job's future, unless its caller has gone meanwhile."""
    if job.future.done():
        return
    if exception is not None:
        job.future.set_exception(exception)
    else:
        job.future.set_result(result)


class Batcher:
    """Scores jobs from concurrent requests in shared batches; see the module docstring.

    Parameters
    ----------
    score: ``score(articles, tasks) -> results``, one result per article in order (the
        Analyzer's ``analyze``); it runs on one scoring thread, never on the event loop.
    max_batch_size: articles per batch at most.
    on_batch: called on the scoring thread after each batch scored, with its articles and the
        seconds it took (the batch-size metric; admission's service rate).
    cost: an article's work units (:func:`akhbar.serving.http.admission.article_cost`).
    budget: the work units a batch may hold, or None while there is no measure yet; a batch
        always holds at least one article.
    """

    def __init__(
        self,
        score: Score,
        max_batch_size: int,
        on_batch: Callable[[list[Any], float], None] | None = None,
        cost: Callable[[Any], float] = lambda article: 0,
        budget: Callable[[], float | None] = lambda: None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self._score, self.max_batch_size, self._on_batch = score, max_batch_size, on_batch
        self._cost, self._budget = cost, budget
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._consumer: asyncio.Task | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="akhbar-score")

    async def score(self, articles: Sequence[Any], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
        """The results of ``articles`` for ``tasks``, scored in the next batch."""
        if self._consumer is None or self._consumer.done():
            self._wake = asyncio.Event()
            self._consumer = asyncio.get_running_loop().create_task(self._consume())
        future = asyncio.get_running_loop().create_future()
        job = _Job(articles, tasks, future)
        self._cut(job)
        self._pending.append(job)
        self._wake.set()
        return await job.future

    def _scored(self, job: _Job, results: list[dict[str, Any]]) -> None:
        """A piece is scored: queue the job's next piece behind the others, or answer it."""
        job.done.extend(results)
        if job.stop < len(job.articles):
            job.start = job.stop
            self._cut(job)
            self._pending.append(job)
        else:
            _answer(job, job.done)

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                jobs = [job for job in self._take() if not job.future.done()]
                if not jobs:
                    continue
                try:
                    results = await loop.run_in_executor(self._thread, self._run, jobs)
                except Exception as exc:
                    if len(jobs) == 1:
                        _answer(jobs[0], exception=exc)
                        continue
                    for job in jobs:  # find the one that fails; the others get their results
                        try:
                            [result] = await loop.run_in_executor(self._thread, self._run, [job])
                        except Exception as alone:
                            _answer(job, exception=alone)
                        else:
                            self._scored(job, result)
                    continue
                for job, result in zip(jobs, results, strict=True):
                    self._scored(job, result)

    def _cut(self, job: _Job) -> None:
        """Set the job's next piece: from ``start``, as many articles as fit in a batch (at
        least one)."""
        budget, spent = self._budget(), 0.0
        stop = job.start
        while stop < len(job.articles) and stop - job.start < self.max_batch_size:
            spent += self._cost(job.articles[stop])
            if stop > job.start and budget is not None and spent > budget:
                break
            stop += 1
        job.stop = stop

    def _take(self) -> list[_Job]:
        """The oldest job's piece and the pieces queued behind it, while they fit in
        ``max_batch_size`` articles and the budget."""
        budget = self._budget()
        batch = [self._pending.popleft()]
        size, spent = len(batch[0].piece), self._piece_cost(batch[0])
        while self._pending:
            job = self._pending[0]
            size_after, spent_after = size + len(job.piece), spent + self._piece_cost(job)
            if size_after > self.max_batch_size or (budget is not None and spent_after > budget):
                break
            batch.append(self._pending.popleft())
            size, spent = size_after, spent_after
        return batch

    def _piece_cost(self, job: _Job) -> float:
        return sum(self._cost(article) for article in job.piece)

    def _run(self, jobs: list[_Job]) -> list[list[dict[str, Any]]]:
        """One scoring call per set of parts asked for; each job's piece's results in order."""
        started = time.perf_counter()
        groups: dict[tuple[str, ...], list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.tasks, []).append(job)
        results: dict[int, list[dict[str, Any]]] = {}
        for tasks, members in groups.items():
            scored = iter(self._score([a for job in members for a in job.piece], tasks))
            for job in members:
                results[id(job)] = [next(scored) for _ in job.piece]
        if self._on_batch is not None:
            self._on_batch([a for job in jobs for a in job.piece], time.perf_counter() - started)
        return [results[id(job)] for job in jobs]
