"""Peak memory (RSS) of training the shipped Multi30k Transformer, what holds it, and allocation churn.

Every figure comes from a fresh process, since a process's peak resident set size only grows:

- ``train``: ``attnlab.training.run.train`` itself on ``configs/multi30k-transformer.yaml`` for
  ``--steps`` steps with validations (every 6 steps of 30, every 27 of 128; loss, greedy decoding of
  the 1,014 validation sentences for BLEU, checkpoints), as ``attnlab train`` runs it. Printed: peak
  RSS, the peak in each phase (forward, backward, optimiser step, validation, checkpoint; sampled
  every 5 ms), and per training step the minor page faults and kernel CPU time (memory the allocator gives
  back to the system and takes again is faulted in and zeroed by the kernel each time);
- ``stages``: the same work done by hand, with the resident size after each stage (imports, data,
  model and optimiser, training steps, validation decoding), to see what holds the memory, and what
  glibc's heap holds after the training steps: the bytes in use, and the freed bytes it keeps;
- ``saved``: the tensors one training step of the largest batch keeps for its backward pass, by the
  function that saved them (attention, feed-forward, layer norm, residual dropout, generator loss).

``--compare-src DIR`` runs each in a second tree too (e.g. the previous commit, ``git archive HEAD~1
src | tar -x -C /tmp/before``, then ``--compare-src /tmp/before/src``), side by side::

    python benchmarks/train_memory.py --steps 40 --compare-src /tmp/before/src

``--jemalloc PATH`` adds a column to the ``train`` figure: the same tree with jemalloc (e.g. Debian's
``libjemalloc2``, ``/usr/lib/x86_64-linux-gnu/libjemalloc.so.2``) preloaded in place of glibc's
allocator and told to keep the memory it frees (``dirty_decay_ms:-1,muzzy_decay_ms:-1``). ``--rounds N`` runs the
``train`` figure N times per column, alternating, and prints medians (time per step on a busy
machine needs it).

``--glibc-mmap-threshold BYTES [BYTES ...]`` adds ``train`` columns with glibc's allocator told to serve
every block of at least BYTES by its own ``mmap`` (``MALLOC_MMAP_THRESHOLD_``; glibc's default
threshold starts at 128 KiB and rises to the largest block freed, up to 32 MiB, so that blocks
of a few MB stay in the heap, where batches of varying shapes fragment it): the freed blocks go
back to the system at once, and come back as page faults::

    python benchmarks/train_memory.py --figures train --steps 30 --glibc-mmap-threshold 1048576 4194304

``--trim-heap-every N [N ...]`` adds ``train`` columns with ``train.trim_heap_every=N``: glibc's
``malloc_trim`` after the forward pass and the optimiser step of every N-th step and after each
validation (``attnlab/training/heap_trim.py``), which returns the pages of the heap's holes to the
system and leaves the holes where they are::

    python benchmarks/train_memory.py --figures train --steps 128 --trim-heap-every 1

``--bf16`` adds a ``train`` column in ``bf16-mixed`` (the others train in fp32, the config's default).
``--onednn-cache N [N ...]`` adds ``train`` columns in bf16-mixed with oneDNN's primitive cache at N entries (1024 is
oneDNN's own default; attnlab sets 16 unless the user chose, see ``attnlab/__init__.py``): oneDNN
runs the bf16 matrix products and keeps a compiled primitive per operand shape, and token-budget
batches have new shapes every step::

    python benchmarks/train_memory.py --figures train --steps 128 --bf16 --onednn-cache 1024 16 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CONFIG = "configs/multi30k-transformer.yaml"
FIGURES = ("train", "stages", "saved")
ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_DATA = os.environ.get("ATTNLAB_DATA", "../shared/data/multi30k")  # from the project root


def rss_mb() -> float:
    """The current resident set size, in MB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def heap_mb() -> dict[str, float]:
    """glibc's view of its heap (``mallinfo2``): bytes in use, and freed bytes kept for reuse, in MB."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return {}
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return {"glibc heap: in use": (info.uordblks + info.hblkhd) / 2**20,
            "glibc heap: freed, kept": info.fordblks / 2**20}


def budget(args: argparse.Namespace) -> list[str]:
    """The data folder and, with ``--batch-tokens``, the batches' token budget."""
    tokens = [f"train.batch_tokens={args.batch_tokens}"] if args.batch_tokens else []
    return [f"data.data_dir={args.data_dir}", *tokens]


def epoch_batches(args: argparse.Namespace) -> int:
    """Batches in an epoch of the config's training set (preparing the data into ``--data-cache``)."""
    from attnlab.config import load_config
    from attnlab.data.batching import make_batches
    from attnlab.data.cache import cached_prepare

    cfg = load_config(CONFIG, budget(args))
    data = cached_prepare(cfg.data, args.data_cache)
    return len(make_batches(data.encoded["train"], cfg.train.batch_tokens, None, seed=cfg.train.seed))


def overrides(args: argparse.Namespace, steps: int) -> list[str]:
    # a validation every steps * 64 / 300 steps (every 6 of 30, every 27 of 128), whatever the batch size: Lightning
    # validates every int(epoch_batches * val_check_interval) steps
    every = max(1, steps * 64 // 300)
    return [*budget(args), f"train.max_steps={steps}", "train.epochs=1",
            f"train.val_check_interval={min(1.0, (every + 0.5) / args.epoch_batches):.6f}",
            f"train.num_threads={args.threads}", f"train.precision={args.precision}",
            *args.set]  # the child's, set by its column


class PhasePeaks:
    """The peak resident size by phase of training (forward, backward, optimiser step, validation, checkpoint):
    a thread samples the RSS every 5 ms under the phase that Lightning's hooks last entered."""

    PHASES = ("forward", "backward", "optimiser step", "validation", "checkpoint")

    def __init__(self):
        import lightning as L

        self.phase = "setup"
        self.peaks: dict[str, float] = {}
        self.running = True
        peaks = self

        class Hooks(L.Callback):
            def on_train_batch_start(self, *args) -> None:
                peaks.phase = "forward"

            def on_before_backward(self, *args) -> None:
                peaks.phase = "backward"

            def on_before_optimizer_step(self, *args) -> None:
                peaks.phase = "optimiser step"

            def on_validation_start(self, *args) -> None:
                peaks.phase = "validation"

            def on_save_checkpoint(self, *args) -> None:
                peaks.phase = "checkpoint"

        self.callback = Hooks()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            phase, rss = self.phase, rss_mb()
            self.peaks[phase] = max(rss, self.peaks.get(phase, 0.0))
            time.sleep(0.005)

    def stop(self) -> dict[str, float]:
        self.running = False
        self.thread.join()
        return {f"peak RSS in {phase} (MB)": self.peaks.get(phase, float("nan")) for phase in self.PHASES}


def child_train(args: argparse.Namespace) -> dict:
    from attnlab.config import load_config
    from attnlab.training import run

    cfg = load_config(CONFIG, overrides(args, args.steps))
    phases = PhasePeaks()
    make_trainer = run._trainer

    def trainer_with_phases(*trainer_args):
        trainer = make_trainer(*trainer_args)
        trainer.callbacks.insert(0, phases.callback)  # first: a phase starts before attnlab's hooks run
        return trainer

    run._trainer = trainer_with_phases
    with tempfile.TemporaryDirectory(prefix="attnlab-memory-") as tmp, open(os.devnull, "w") as sink:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            _, summary = run.train(cfg, Path(tmp) / "run", data_cache=args.data_cache)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
    steps = summary["steps"]
    return {"peak RSS (MB)": peak_mb(), **phases.stop(), "steps": steps, "seconds per step": seconds / steps,
            "target tokens/s in training steps": summary["tokens_per_sec"],
            "minor page faults per step": (after.ru_minflt - before.ru_minflt) / steps,
            "kernel CPU share": (after.ru_stime - before.ru_stime) /
                                max((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1e-9)}


def child_stages(args: argparse.Namespace) -> dict:
    stages = {"python": rss_mb()}
    import lightning  # noqa: F401
    import torch

    from attnlab.config import load_config
    from attnlab.data.batching import collate, make_batches
    from attnlab.data.cache import cached_prepare
    from attnlab.decoding.greedy import greedy_decode
    from attnlab.evaluation.references import GroupedReferences
    from attnlab.models.build import build_model
    from attnlab.training.optim import build_optimizer
    from attnlab.training.system import TranslationSystem

    torch.set_num_threads(args.threads)
    stages["imports (torch, lightning, attnlab)"] = rss_mb()
    cfg = load_config(CONFIG, overrides(args, args.steps))
    data = cached_prepare(cfg.data, args.data_cache)
    references = GroupedReferences.from_pairs(data.texts["val"], by_source=False, limit=cfg.train.val_bleu_sentences)
    stages["data opened, validation text read"] = rss_mb()
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab))
    optimizer = build_optimizer(list(model.parameters()), cfg.train)
    system = TranslationSystem(model, cfg.train, cfg.decode, cfg.model.d_model, lambda ids: "", references).train()
    stages["model and optimiser built"] = rss_mb()
    train = data.encoded["train"]
    for group in list(make_batches(train, cfg.train.batch_tokens, None, seed=cfg.train.seed))[: args.steps // 2]:
        loss, tokens = system._step(collate(train, group), teacher_forcing=1.0)
        optimizer.zero_grad(set_to_none=True)
        (loss / tokens).backward()
        optimizer.step()
    stages[f"after {args.steps // 2} training steps"] = rss_mb()
    stages["peak so far (training)"] = peak_mb()
    stages.update(heap_mb())
    model.eval()
    val = data.encoded["val"]
    with torch.no_grad():
        for group in make_batches(val, cfg.train.batch_tokens, None, shuffle=False):
            batch = collate(val, group)
            system._step(batch, teacher_forcing=1.0)
            greedy_decode(model, batch.src, batch.src_lengths, cfg.decode.max_len_ratio, cfg.decode.max_len)
    stages["after validation (loss, greedy decoding)"] = rss_mb()
    stages["peak (whole process)"] = peak_mb()
    return stages


def child_saved(args: argparse.Namespace) -> dict:
    """MB saved for backward by one training step on the training set's largest batch, by saving function.

    A tensor is counted once (by its storage), under the innermost attnlab function on the stack when
    autograd saved it (``Residual.before`` is a pre-norm layer norm's input, for example); parameters
    are not counted.
    """
    import torch

    from attnlab.config import load_config
    from attnlab.data.batching import batch_cost, collate, make_batches
    from attnlab.data.cache import cached_prepare
    from attnlab.evaluation.references import GroupedReferences
    from attnlab.models.build import build_model
    from attnlab.training.system import TranslationSystem

    torch.set_num_threads(args.threads)
    cfg = load_config(CONFIG, overrides(args, args.steps))
    data = cached_prepare(cfg.data, args.data_cache)
    references = GroupedReferences.from_pairs(data.texts["val"], by_source=False, limit=cfg.train.val_bleu_sentences)
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab))
    system = TranslationSystem(model, cfg.train, cfg.decode, cfg.model.d_model, lambda ids: "", references).train()
    train = data.encoded["train"]
    batches = make_batches(train, cfg.train.batch_tokens, None, seed=cfg.train.seed)
    batch = collate(train, max(batches, key=lambda group: batch_cost(train, group)))
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    counted: set[int] = set()
    saved: dict[str, float] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters and storage.data_ptr() not in counted:
            counted.add(storage.data_ptr())
            frame = sys._getframe(1)
            while frame and "attnlab" not in frame.f_code.co_filename:
                frame = frame.f_back
            saver = frame.f_code.co_qualname if frame else "?"
            saved[saver] = saved.get(saver, 0.0) + storage.nbytes() / 2**20
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        system._step(batch, teacher_forcing=1.0)
    return {"batch: sentences": batch.src.size(0), "batch: source positions": batch.src.numel(),
            "batch: target positions": batch.tgt_in.numel(),
            **{f"MB saved: {saver}": mb for saver, mb in sorted(saved.items(), key=lambda item: -item[1])},
            "MB saved: total": sum(saved.values())}


JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"  # keep freed pages for reuse, as glibc's heap does


def run_child(mode: str, args: argparse.Namespace, src: str | None, extra_env: dict[str, str],
              precision: str = "32", extra_set: tuple[str, ...] = ()) -> dict:
    env = dict(os.environ) | extra_env
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, __file__, "--child", mode, "--steps", str(args.steps), "--threads", str(args.threads),
               "--data-dir", args.data_dir, "--data-cache", args.data_cache, "--precision", precision,
               "--epoch-batches", str(args.epoch_batches),
               *(["--batch-tokens", str(args.batch_tokens)] if args.batch_tokens else []),
               *(f"--set={item}" for item in extra_set)]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the {mode} child ({src or 'this tree'}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_columns(title: str, columns: dict[str, dict]) -> None:
    names = list(columns)
    print(f"\n{title}")
    print(f"  {'':<56}" + "".join(f"{name:>16}" for name in names))
    for key in columns[names[0]]:
        print(f"  {key:<56}" + "".join(f"{columns[name].get(key, float('nan')):>16,.2f}" for name in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--batch-tokens", type=int, help="token budget of a batch (default: the config's own)")
    parser.add_argument("--data-cache", help="prepared-data folder shared by the children (default: a temporary one)")
    parser.add_argument("--compare-src", help="another tree's src/ to measure beside this one")
    parser.add_argument("--jemalloc", help="path of libjemalloc.so.2: also measure this tree with jemalloc preloaded")
    parser.add_argument("--glibc-mmap-threshold", type=int, nargs="+", default=[], metavar="BYTES",
                        help="also measure train with MALLOC_MMAP_THRESHOLD_ at each BYTES")
    parser.add_argument("--rounds", type=int, default=1, help="runs of the train figure per column (medians)")
    parser.add_argument("--bf16", action="store_true", help="also measure train in bf16-mixed")
    parser.add_argument("--epoch-batches", type=int, help=argparse.SUPPRESS)  # a child's, counted by the parent
    parser.add_argument("--precision", default="32", help=argparse.SUPPRESS)  # a child's, from its column
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)  # a child's config overrides
    parser.add_argument("--trim-heap-every", type=int, nargs="+", default=[], metavar="N",
                        help="also measure train with train.trim_heap_every=N (glibc's malloc_trim every N steps)")
    parser.add_argument("--onednn-cache", type=int, nargs="+", default=[],
                        help="also measure train with oneDNN's primitive cache at each N")
    parser.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES), help="which figures to measure")
    parser.add_argument("--child", choices=("train", "stages", "saved"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        children = {"train": child_train, "stages": child_stages, "saved": child_saved}
        print(json.dumps(children[args.child](args)))
        return
    if args.jemalloc and not Path(args.jemalloc).is_file():
        raise SystemExit(f"--jemalloc {args.jemalloc}: no such file (Debian: apt-get install libjemalloc2)")
    with tempfile.TemporaryDirectory(prefix="attnlab-memory-data-") as tmp:
        args.data_cache = args.data_cache or tmp
        args.epoch_batches = epoch_batches(args)
        # column: (src tree or None for this one, environment, precision, config overrides)
        trees: dict[str, tuple[str | None, dict[str, str], str, tuple[str, ...]]] = {"this tree": (None, {}, "32", ())}
        if args.compare_src:
            trees["--compare-src"] = (args.compare_src, {}, "32", ())
        if args.jemalloc:
            trees["jemalloc"] = (None, {"LD_PRELOAD": args.jemalloc, "MALLOC_CONF": JEMALLOC_CONF}, "32", ())
        for threshold in args.glibc_mmap_threshold:
            trees[f"mmap >= {threshold // 1024} KiB"] = (None, {"MALLOC_MMAP_THRESHOLD_": str(threshold)}, "32", ())
        for every in args.trim_heap_every:
            trees[f"trim every {every}"] = (None, {}, "32", (f"train.trim_heap_every={every}",))
        if args.bf16:
            trees["bf16-mixed"] = (None, {}, "bf16-mixed", ())
        for entries in args.onednn_cache:
            trees[f"bf16, oneDNN {entries}"] = (None, {ONEDNN_CACHE: str(entries)}, "bf16-mixed", ())
        for mode in args.figures:
            rounds = args.rounds if mode == "train" else 1
            # other allocators and precisions only for the train figure: the others step by hand in fp32 on glibc
            columns_of = {name: tree for name, tree in trees.items()
                          if mode == "train" or (not tree[1] and tree[2] == "32" and not tree[3])}
            results: dict[str, list[dict]] = {name: [] for name in columns_of}
            for _ in range(rounds):  # alternating columns: load on a shared machine hits them alike
                for name, (src, extra_env, precision, extra_set) in columns_of.items():
                    results[name].append(run_child(mode, args, src, extra_env, precision, extra_set))
            columns = {name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
                       for name, rows in results.items()}
            title = f"{mode}: {CONFIG}, {args.steps} steps, {args.threads} threads"
            print_columns(title + (f", medians of {rounds} runs" if rounds > 1 else ""), columns)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
