"""Small models at the scale of the classic experiments: what Lightning and validation cost there.

The suites' setting (``experiments/base/tatoeba-lstm.yaml``: Tatoeba in the tutorial's setting,
batches of 32 sentences, emb/hid 256, Adam) with Luong ``general`` attention, for a GRU and an LSTM.
Each round trains one full epoch twice, on the same batches in the same order:

- ``plain``: a PyTorch loop: collate, forward, loss, backward, gradient clipping, Adam step;
- ``lightning``: ``attnlab.training.run.train`` itself (data module, loggers, callbacks, progress bar,
  checkpoints, then validation: loss and greedy decoding of every validation source for BLEU).

Lightning's times are read from inside the real run: this script wraps ``TranslationSystem``'s hooks
to take timestamps (batch starts, validation start and end). A step is the time from one batch's
start to the next one's, so it includes loading the batch and every hook. Printed per model: steps/s
and target tokens/s of both loops (medians over the rounds), Lightning's time per step over the
plain loop's, and validation's share of the epoch (training steps + validation)::

    python benchmarks/small_models.py --rounds 3 --threads 1
    python benchmarks/small_models.py --rounds 3 --threads 2
    python benchmarks/small_models.py --rounds 3 --parallel 2   # two runs at once, one thread each
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from attnlab.config import load_config
from attnlab.data.batching import collate, make_batches
from attnlab.data.prepare import prepare_data
from attnlab.models.build import build_model
from attnlab.training.losses import sequence_loss
from attnlab.training.optim import build_optimizer
from attnlab.training.run import train
from attnlab.training.system import TranslationSystem

BASE = "experiments/base/tatoeba-lstm.yaml"
MODELS = {"gru + general attention": ["model.cell=gru"], "lstm + general attention": ["model.cell=lstm"]}


class HookClock:
    """Timestamps from inside a training run, taken by wrapping ``TranslationSystem``'s hooks."""

    def __init__(self) -> None:
        self.batch_starts: list[float] = []
        self.tokens: list[int] = []
        self.val_start = self.val_end = 0.0
        wrap = self._wrap
        TranslationSystem.on_train_batch_start = wrap(TranslationSystem.on_train_batch_start, self._batch)
        TranslationSystem.on_validation_epoch_start = wrap(TranslationSystem.on_validation_epoch_start, self._val)
        TranslationSystem.on_validation_epoch_end = wrap(TranslationSystem.on_validation_epoch_end, None, self._end)

    @staticmethod
    def _wrap(hook, before, after=None):
        def timed(system, *args, **kwargs):
            if before is not None:
                before(*args)
            result = hook(system, *args, **kwargs)
            if after is not None:
                after()
            return result
        return timed

    def _batch(self, batch, batch_idx: int) -> None:
        self.batch_starts.append(time.perf_counter())
        self.tokens.append(batch.num_tgt_tokens)

    def _val(self) -> None:
        self.val_start = time.perf_counter()
        self.batch_starts.append(self.val_start)  # ends the last training step

    def _end(self) -> None:
        self.val_end = time.perf_counter()

    def reset(self) -> None:
        self.batch_starts, self.tokens = [], []


def plain_epoch(cfg, data, threads: int) -> tuple[float, int, int]:
    """Seconds, steps and target tokens of one epoch in a plain loop over the batches ``train`` uses."""
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, len(data.src_vocab), len(data.tgt_vocab)).train()
    optimizer = build_optimizer(list(model.parameters()), cfg.train)
    pairs = data.encoded["train"]
    groups = make_batches(pairs, cfg.train.batch_tokens, cfg.train.batch_size, seed=cfg.train.seed)
    tokens, start = 0, time.perf_counter()
    for group in groups:
        batch = collate(pairs, group)
        loss = sequence_loss(model(batch).logits, batch.tgt_out) / batch.num_tgt_tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
        optimizer.step()
        tokens += batch.num_tgt_tokens
    return time.perf_counter() - start, len(groups), tokens


def lightning_epoch(cfg, data, clock: HookClock, folder: Path) -> dict[str, float]:
    """One epoch of ``train`` (then validation); seconds of its training steps and of validation."""
    clock.reset()
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
        train(cfg, folder / f"run-{time.perf_counter_ns()}", data=data)
    steps = len(clock.tokens)
    seconds = clock.batch_starts[steps] - clock.batch_starts[0]  # first batch start to validation start
    return {"seconds": seconds, "steps": steps, "tokens": sum(clock.tokens),
            "validation": clock.val_end - clock.val_start}


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    clock = HookClock()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="attnlab-small-") as tmp:
        configs = {}
        for name, overrides in MODELS.items():
            cfg = load_config(BASE, [*overrides, "model.attention=general", "train.epochs=1", "train.logger=csv",
                                     f"train.num_threads={args.threads}"])
            configs[name] = (cfg, prepare_data(cfg.data))
            results[name] = {key: [] for key in ("plain_s", "lightning_s", "validation_s", "steps", "tokens")}
        for _ in range(args.rounds):
            for name, (cfg, data) in configs.items():
                seconds, steps, tokens = plain_epoch(cfg, data, args.threads)
                run = lightning_epoch(cfg, data, clock, Path(tmp))
                if run["steps"] != steps or run["tokens"] != tokens:
                    raise RuntimeError(f"{name}: Lightning ran {run['steps']} steps, the plain loop {steps}")
                row = results[name]
                row["plain_s"].append(seconds / steps)
                row["lightning_s"].append(run["seconds"] / steps)
                row["validation_s"].append(run["validation"])
                row["steps"].append(steps)
                row["tokens"].append(tokens)
    return results


def report(results: dict, label: str) -> None:
    print(f"\n{label}")
    print(f"{'model':<26} {'plain steps/s':>13} {'tokens/s':>9} {'lightning steps/s':>17} {'tokens/s':>9} "
          f"{'lightning/plain':>15} {'validation share':>16}")
    for name, row in results.items():
        plain, lightning = statistics.median(row["plain_s"]), statistics.median(row["lightning_s"])
        per_step_tokens = row["tokens"][0] / row["steps"][0]
        epoch = lightning * row["steps"][0]
        validation = statistics.median(row["validation_s"])
        share = validation / (epoch + validation)
        print(f"{name:<26} {1 / plain:>13.1f} {per_step_tokens / plain:>9,.0f} {1 / lightning:>17.1f} "
              f"{per_step_tokens / lightning:>9,.0f} {lightning / plain:>14.3f}x {share:>15.1%}")


def run_parallel(args: argparse.Namespace) -> None:
    """``--parallel N``: N copies of this script at once, one thread each; each one's table is printed."""
    command = [sys.executable, __file__, "--rounds", str(args.rounds), "--threads", "1", "--json"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.parallel)]
    for number, process in enumerate(processes, 1):
        out, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"copy {number} failed with exit code {process.returncode}")
        report(json.loads(out.strip().splitlines()[-1]), f"copy {number} of {args.parallel}, one thread each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (one epoch per loop each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=0, help="run this many copies at once, one thread each")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON (for --parallel)")
    args = parser.parse_args()
    if args.parallel:
        run_parallel(args)
        return
    results = measure(args)
    if args.json:
        print(json.dumps(results))
        return
    report(results, f"{args.threads} thread(s), {args.rounds} rounds, medians; load average "
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
