"""Models loaded on first use and kept within a memory budget, least recently used out first.

A server may offer dozens of runs; loading all of them at start-up would take minutes and gigabytes.
:class:`ModelCache` loads a model the first time a request needs it and keeps it while the sizes of
the kept models add up to at most ``max_bytes``; past that, the least recently used go. The model
being loaded always stays, so a single model larger than the budget still serves (alone).

Requests run in worker threads, so the cache is thread-safe: a model is loaded once even when
several requests ask for it at the same moment (they wait for the one load), and a slow load of
one model does not hold up requests for models already loaded. An evicted model still in use by a
request is freed when that request ends.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["ModelCache", "Loaded", "module_bytes"]

V = TypeVar("V")


def module_bytes(module: Any) -> int:
    """Bytes held by a torch module's parameters and buffers (what a loaded model costs in memory)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class Loaded(Generic[V]):
    """A cached value and how long this call waited for it to load (0.0 when it was already loaded)."""

    value: V
    load_seconds: float


class ModelCache(Generic[V]):
    """``get(key)`` returns ``loader(key)``, loading at most once per key while it stays cached."""

    def __init__(self, loader: Callable[[Hashable], V], size_of: Callable[[V], int], max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes is {max_bytes}; the cache needs a positive memory budget")
        self._loader, self._size_of, self.max_bytes = loader, size_of, max_bytes
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()  # least recently used first
        self._loading: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self.hits = self.loads = self.evictions = 0

    def _hit(self, key: Hashable) -> V | None:
        """The cached value (marked most recently used), or None; call with ``_lock`` held."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return self._items[key][0]

    def get(self, key: Hashable) -> Loaded[V]:
        with self._lock:
            value = self._hit(key)
            if value is not None:
                return Loaded(value, 0.0)
            key_lock = self._loading.setdefault(key, threading.Lock())
        started = time.perf_counter()
        with key_lock:  # one load per key; other keys are not blocked
            with self._lock:
                value = self._hit(key)  # loaded by another request while this one waited
            if value is not None:
                return Loaded(value, time.perf_counter() - started)
            try:
                value = self._loader(key)
                size = self._size_of(value)
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:  # cached and no longer loading in one step: no window for a second load
                self._items[key] = (value, size)
                self._loading.pop(key, None)
                self.loads += 1
                self._evict(keep=key)
        return Loaded(value, time.perf_counter() - started)

    def _evict(self, keep: Hashable) -> None:
        while self.bytes > self.max_bytes and len(self._items) > 1:
            oldest = next(k for k in self._items if k != keep)
            del self._items[oldest]
            self.evictions += 1

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._items.values())

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"models": [list(k) if isinstance(k, tuple) else k for k in self._items],
                    "bytes": self.bytes, "max_bytes": self.max_bytes, "hits": self.hits, "loads": self.loads,
                    "evictions": self.evictions}
