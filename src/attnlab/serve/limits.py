"""What one request may ask of the server, and how much work it takes on at once.

:class:`Limits` bounds each request (sentence length, sentences per request, beam size, n-best); a
request beyond them is refused with a 4xx and a message naming the limit, before any model runs.
:class:`Gate` bounds the server: at most ``workers`` requests run inference at once, in a thread
pool off the event loop, and at most ``queue`` more wait for a worker. A request beyond that is
refused at once (503, "busy") instead of joining an ever longer queue, so latency stays bounded and
memory does not grow with the load.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

__all__ = ["Limits", "LimitError", "Overloaded", "Gate"]

T = TypeVar("T")


class LimitError(ValueError):
    """A request asks for more than the server allows (answered with 422 and this message)."""


class Overloaded(RuntimeError):
    """Every worker is busy and the waiting line is full (answered with 503)."""


@dataclass(frozen=True)
class Limits:
    """Per-request limits. ``max_chars`` bounds each sentence and reference; the model's own limit
    on source tokens (``decode.max_len``, or the Transformer's positions) is checked as well."""

    max_chars: int = 500
    max_sentences: int = 32
    max_beam: int = 10
    max_n_best: int = 10
    max_body_bytes: int = 256 * 1024

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def check_text(self, text: str, what: str) -> None:
        if len(text) > self.max_chars:
            raise LimitError(f"{what} has {len(text)} characters; this server allows at most {self.max_chars}")

    def check_sentences(self, sentences: list[str]) -> None:
        if not sentences:
            raise LimitError("sentences is empty; send at least one sentence")
        if len(sentences) > self.max_sentences:
            raise LimitError(f"{len(sentences)} sentences in one request; this server allows at most "
                             f"{self.max_sentences} (send several requests)")
        for number, sentence in enumerate(sentences, start=1):
            self.check_text(sentence, f"sentence {number}")

    def check_search(self, beam: int, n_best: int = 1) -> None:
        if not 1 <= beam <= self.max_beam:
            raise LimitError(f"beam is {beam}; this server allows 1 (greedy) to {self.max_beam}")
        if n_best > self.max_n_best:
            raise LimitError(f"n_best is {n_best}; this server allows at most {self.max_n_best}")
        if not 1 <= n_best <= beam:
            raise LimitError(f"n_best is {n_best}; it must be between 1 and the beam size ({beam})")


class Gate:
    """Runs blocking work in ``workers`` threads; refuses work beyond ``workers + queue`` in progress."""

    def __init__(self, workers: int = 2, queue: int = 32) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers is {workers} and queue {queue}; need workers >= 1 and queue >= 0")
        self.workers, self.queue = workers, queue
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="attnlab-infer")
        self.in_progress = 0  # admitted requests, running or waiting; touched on the event loop only
        self.refused = 0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread, or :class:`Overloaded` at once when the line is full."""
        if self.in_progress >= self.workers + self.queue:
            self.refused += 1
            raise Overloaded(f"the server is busy ({self.in_progress} requests in progress, {self.workers} at a "
                             "time); try again shortly")
        self.in_progress += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(work, *args))
        finally:
            self.in_progress -= 1

    def status(self) -> dict[str, int]:
        return {"workers": self.workers, "queue": self.queue, "in_progress": self.in_progress,
                "refused": self.refused}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
