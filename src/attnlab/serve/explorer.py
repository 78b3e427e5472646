"""The work behind the API: runs by id, models from the cache, translations and attention.

These methods block (they run models), so the app calls them in the :class:`~attnlab.serve.limits.Gate`'s
worker threads, never on the event loop. Every request names a run by its id from the start-up
catalog; nothing here takes a path from a request.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from attnlab.attention_view.html import view_fragment
from attnlab.attention_view.records import AttentionRecord
from attnlab.attention_view.stats import record_stats
from attnlab.decoding.translator import Translator
from attnlab.evaluation.attention import translator_attention
from attnlab.serve.cache import ModelCache, module_bytes
from attnlab.serve.discovery import Catalog, RunEntry
from attnlab.serve.limits import LimitError, Limits

__all__ = ["Explorer", "UnknownRun", "Unavailable", "Loader", "load_translator", "json_ready"]

Loader = Callable[[RunEntry, str], Translator]  # (run, "best" or "init") -> a Translator on the CPU


class UnknownRun(LookupError):
    """A request named a run id the server did not find at start-up (answered with 404)."""


class Unavailable(RuntimeError):
    """The run exists but lacks what the request needs, e.g. a checkpoint (answered with 409)."""


def load_translator(entry: RunEntry, checkpoint: str) -> Translator:
    return Translator.from_run(entry.root, checkpoint=checkpoint, device="cpu")


class Explorer:
    """The catalog of runs, the per-request limits and the model cache, behind one interface."""

    def __init__(self, catalog: Catalog, limits: Limits | None = None, cache_bytes: int = 1024 * 2**20,
                 loader: Loader = load_translator) -> None:
        self.catalog, self.limits = catalog, limits or Limits()
        self.cache: ModelCache[Translator] = ModelCache(
            lambda key: loader(self.catalog.runs[key[0]], key[1]), lambda t: module_bytes(t.model), cache_bytes)

    def entry(self, run_id: str) -> RunEntry:
        if run_id not in self.catalog.runs:
            known = ", ".join(sorted(self.catalog.runs)[:10])
            raise UnknownRun(f"run {run_id!r} is unknown; this server offers: {known}"
                             + (", ..." if len(self.catalog.runs) > 10 else "") + " (GET /api/runs lists them)")
        return self.catalog.runs[run_id]

    def _translator(self, entry: RunEntry, checkpoint: str = "best") -> tuple[Translator, float]:
        run = entry.run
        if checkpoint == "best" and not (run.best.is_file() or run.last.is_file()):
            raise Unavailable(f"run {entry.id!r} has no checkpoint yet (it stopped before its first validation)")
        if checkpoint == "init" and not run.init.is_file():
            raise Unavailable(f"run {entry.id!r} has no checkpoints/init.pt (the weights at initialisation, "
                              "saved by training before the first step); compare_init needs it")
        loaded = self.cache.get((entry.id, checkpoint))
        return loaded.value, loaded.load_seconds

    def _check_tokens(self, translator: Translator, texts: list[str]) -> None:
        """Refuse sources longer than the model reads (the Translator would cut them with a warning)."""
        for number, text in enumerate(texts, start=1):
            normalised = translator.normalize(text)
            count = len(translator.src_tokenizer.encode(normalised)) if normalised else 0
            if count > translator.max_src_len:
                where = "the sentence" if len(texts) == 1 else f"sentence {number}"
                raise LimitError(f"{where} has {count} tokens; this model reads at most {translator.max_src_len} "
                                 f"({translator.limit_reason})")

    def translate(self, run_id: str, sentences: list[str], beam: int, n_best: int) -> dict[str, Any]:
        """The n-best translations of ``sentences`` (blocking)."""
        entry = self.entry(run_id)
        started = time.perf_counter()
        translator, load_seconds = self._translator(entry)
        self._check_tokens(translator, sentences)
        results = translator.translate(sentences, beam=beam, n_best=n_best, batch_size=len(sentences))
        translations = [
            {"source": r.source, "src_tokens": r.src_tokens,
             "n_best": [{"text": c.text, "tokens": c.tokens, "score": c.score,
                         "normalized_score": c.normalized_score, "complete": c.complete} for c in r.n_best]}
            for r in results
        ]
        return {"run": entry.id, "beam": beam, "n_best": n_best, "seconds": time.perf_counter() - started,
                "load_seconds": load_seconds, "translations": translations}

    def attention(self, run_id: str, text: str, reference: str | None, kind: str, beam: int,
                  compare_init: bool) -> dict[str, Any]:
        """Every attention map of one sentence, its statistics and the record (blocking)."""
        entry = self.entry(run_id)
        started = time.perf_counter()
        translator, load_seconds = self._translator(entry)
        self._check_tokens(translator, [text])
        init_model = None
        if compare_init:
            init, init_seconds = self._translator(entry, "init")
            init_model, load_seconds = init.model, load_seconds + init_seconds
        record, target = translator_attention(translator, text, reference, kind, init_model, beam,
                                              label=entry.name, where=f"run {entry.id!r}")
        stats = record_stats(record)
        return {"run": entry.id, "target": target, "forced": reference is not None,
                "seconds": time.perf_counter() - started, "load_seconds": load_seconds,
                "record": record, "stats": stats}

    def attention_view(self, run_id: str, text: str, reference: str | None, kind: str, beam: int,
                       compare_init: bool) -> dict[str, Any]:
        """:meth:`attention`, with the record rendered as the interactive view's markup (``html``)."""
        result = self.attention(run_id, text, reference, kind, beam, compare_init)
        result["html"] = view_fragment(result["record"], result["stats"], prefix=f"v{uuid.uuid4().hex[:8]}-")
        return result


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    """An :meth:`Explorer.attention` result as JSON: the record as lists, NaN statistics as null."""
    record: AttentionRecord = result["record"]
    stats = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
             for row in result["stats"]]
    return {**result, "record": record.to_dict(), "stats": stats}
