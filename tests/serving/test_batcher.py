"""The service's in-process batcher: concurrent requests share batches, nothing waits to
fill one, a gone caller's articles are not scored, and a failure reaches every caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from akhbar.serving.http.batcher import Batcher


class Scorer:
    """Records every call; ``gate`` holds the first call until released."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[list[str], tuple[str, ...]]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, articles, tasks):
        self.calls.append((list(articles), tasks))
        self.entered.set()
        self.gate.wait(5)
        if self.fail_on in articles:
            raise RuntimeError(f"cannot score {self.fail_on}")
        return [{"article": a, "tasks": tasks} for a in articles]


async def until(event: threading.Event) -> None:
    await asyncio.get_running_loop().run_in_executor(None, event.wait, 5)


@pytest.mark.anyio
async def test_a_lone_request_is_scored_at_once_and_later_ones_share_the_next_batch():
    scorer, sizes = Scorer(), []
    batcher = Batcher(scorer, 8, on_batch=lambda articles, _: sizes.append(len(articles)))
    first = asyncio.ensure_future(batcher.score(["a"], ("topic",)))
    await until(scorer.entered)  # scoring started with one article: nothing waited for more
    queued = [
        asyncio.ensure_future(batcher.score(["b", "c"], ("topic",))),
        asyncio.ensure_future(batcher.score(["d"], ("topic", "summary"))),
        asyncio.ensure_future(batcher.score(["e"], ("topic",))),
    ]
    await asyncio.sleep(0.05)
    scorer.gate.set()
    assert await first == [{"article": "a", "tasks": ("topic",)}]
    b, d, e = await asyncio.gather(*queued)
    # One batch for the three queued requests: one call per set of parts, results in order.
    assert sizes == [1, 4]
    assert scorer.calls[1:] == [(["b", "c", "e"], ("topic",)), (["d"], ("topic", "summary"))]
    assert [r["article"] for r in b] == ["b", "c"] and d[0]["tasks"] == ("topic", "summary")
    assert e == [{"article": "e", "tasks": ("topic",)}]


@pytest.mark.anyio
async def test_batches_stay_within_max_batch_size_and_a_larger_request_is_scored_in_pieces():
    scorer, sizes = Scorer(), []
    scorer.gate.set()
    batcher = Batcher(scorer, 3, on_batch=lambda articles, _: sizes.append(len(articles)))
    results = await asyncio.gather(
        batcher.score(["a", "b"], ("topic",)),
        batcher.score(["c", "d"], ("topic",)),
        batcher.score(list("efghi"), ("topic",)),
        batcher.score(["j"], ("topic",)),
    )
    assert [len(r) for r in results] == [2, 2, 5, 1]
    assert max(sizes) <= 3 and sum(sizes) == 10
    assert [r["article"] for r in results[2]] == list("efghi")


@pytest.mark.anyio
async def test_a_small_request_is_not_held_back_behind_a_large_one():
    scorer = Scorer()
    batcher = Batcher(scorer, 2)
    large = asyncio.ensure_future(batcher.score(list("abcdef"), ("topic",)))
    await until(scorer.entered)  # the large request's first piece is being scored
    small = asyncio.ensure_future(batcher.score(["x"], ("topic",)))
    await asyncio.sleep(0.05)
    scorer.gate.set()
    assert [r["article"] for r in await large] == list("abcdef")
    assert await small == [{"article": "x", "tasks": ("topic",)}]
    # The small one was scored right after the large one's first piece, not after its last.
    assert [articles for articles, _ in scorer.calls] == [["a", "b"], ["x"], ["c", "d"], ["e", "f"]]


@pytest.mark.anyio
async def test_batches_hold_about_a_budget_of_work_and_at_least_one_article():
    # An article's cost is its length; the budget is 10 units (a second of work, in service).
    scorer, budget = Scorer(), {"units": None}
    batcher = Batcher(scorer, 8, cost=len, budget=lambda: budget["units"])
    first = asyncio.ensure_future(batcher.score(["aaaa"] * 6, ("topic",)))  # no rate yet
    await until(scorer.entered)
    budget["units"] = 10
    later = [
        asyncio.ensure_future(batcher.score(["bbbb"] * 5, ("topic",))),  # pieces of 2 (8 units)
        asyncio.ensure_future(batcher.score(["c" * 30], ("topic",))),  # over budget: alone
        asyncio.ensure_future(batcher.score(["dd"], ("topic",))),
    ]
    await asyncio.sleep(0.05)
    scorer.gate.set()
    assert len(await first) == 6
    assert [len(r) for r in await asyncio.gather(*later)] == [5, 1, 1]
    assert [articles for articles, _ in scorer.calls] == [
        ["aaaa"] * 6,  # cut before the budget was known: max_batch_size only
        ["bbbb"] * 2,  # the next pieces would pass 10 units: each waits for a batch of its own
        ["c" * 30],
        ["dd", "bbbb", "bbbb"],  # 2 + 8 units: the small request joins the large one's piece
        ["bbbb"],
    ]


@pytest.mark.anyio
async def test_a_caller_that_has_gone_before_its_batch_starts_is_not_scored():
    scorer = Scorer()
    batcher = Batcher(scorer, max_batch_size=8)
    first = asyncio.ensure_future(batcher.score(["a"], ("topic",)))
    await until(scorer.entered)
    gone = asyncio.ensure_future(batcher.score(["timed-out"], ("topic",)))
    kept = asyncio.ensure_future(batcher.score(["b"], ("topic",)))
    await asyncio.sleep(0.05)
    gone.cancel()  # what the middleware's timeout (or a disconnect) does to the request
    scorer.gate.set()
    await first
    assert await kept == [{"article": "b", "tasks": ("topic",)}]
    assert [articles for articles, _ in scorer.calls] == [["a"], ["b"]]


@pytest.mark.anyio
async def test_a_failing_batch_fails_only_the_request_that_breaks_it():
    scorer = Scorer(fail_on="bad")
    scorer.gate.set()
    batcher = Batcher(scorer, max_batch_size=8)
    bad, good = await asyncio.gather(
        batcher.score(["bad"], ("topic",)),
        batcher.score(["b"], ("topic",)),
        return_exceptions=True,
    )
    assert isinstance(bad, RuntimeError) and "cannot score bad" in str(bad)
    assert good == [{"article": "b", "tasks": ("topic",)}]  # scored again alone
    assert [articles for articles, _ in scorer.calls] == [["bad", "b"], ["bad"], ["b"]]
    assert await batcher.score(["c"], ("topic",)) == [{"article": "c", "tasks": ("topic",)}]


def test_max_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="max_batch_size must be at least 1, got 0"):
        Batcher(Scorer(), max_batch_size=0)


@pytest.fixture
def anyio_backend():
    return "asyncio"
