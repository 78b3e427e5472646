"""Load on ``attnlab serve``: concurrent clients on loopback, a fixed number of requests, then it stops.

Starts ``attnlab serve`` over the given runs on 127.0.0.1 (a free port) in its own process, loads each
run's model once (a warm-up request, timed apart), then ``--clients`` threads send ``--requests``
requests in all, drawn in a fixed rotation over the runs: greedy translation of one sentence, beam
search (beam 5, 3-best) of a batch of four, and the attention of one sentence (every kind, layer and
head, with statistics). Prints requests per second, latency percentiles, errors by status, and the
server's memory (resident set now and at its peak, and the model cache against its budget)::

    python benchmarks/serve_load.py --runs /work/runs-shared/explorer --clients 16 --requests 480

Traffic goes to 127.0.0.1 only; the request count is fixed, so the run ends by itself. The server's
default limits hold: 2 workers, 32 waiting requests (more would get 503), a 1,024 MB model cache.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

SENTENCES = ["i am cold .", "he is a teacher .", "you are not as tall as i am .", "she is afraid of the dark .",
             "we are going to be late .", "i am not sure what to do .", "they are very happy .", "he is my brother ."]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="run directories or folders of runs to serve")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--requests", type=int, default=480, help="requests in all, after warm-up (default 480)")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers (default 2)")
    parser.add_argument("--queue", type=int, default=32, help="the server's --queue (default 32)")
    parser.add_argument("--cache-mb", type=int, default=1024, help="the server's --cache-mb (default 1024)")
    return parser.parse_args()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "attnlab", "serve", *args.runs, "--port", "0", "--workers", str(args.workers),
               "--queue", str(args.queue), "--cache-mb", str(args.cache_mb)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for line in server.stdout:
        if "open http://" in line:
            return server, line.split("open ", 1)[1].split(" ", 1)[0].rstrip("/")
    raise SystemExit(f"the server did not start (exit code {server.wait()})")


def requests_for(run_ids: list[str]) -> Iterator[tuple[str, str, dict]]:
    """(label, path, body) forever, in a fixed rotation over runs, request kinds and sentences."""
    sentences = itertools.cycle(SENTENCES)
    for run_id in itertools.cycle(run_ids):
        yield "translate greedy", f"/api/runs/{run_id}/translate", {"sentences": [next(sentences)], "beam": 1}
        batch = [next(sentences) for _ in range(4)]
        yield "translate beam 5", f"/api/runs/{run_id}/translate", {"sentences": batch, "beam": 5, "n_best": 3}
        yield "attention", f"/api/runs/{run_id}/attention", {"text": next(sentences)}


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM), in MB (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def run_clients(url: str, plan: list[tuple[str, str, dict]], clients: int) -> list[tuple[str, int, float]]:
    """Send ``plan`` from ``clients`` threads; (label, status, seconds) per request."""
    lock, results = threading.Lock(), []
    work = iter(plan)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    item = next(work, None)
                if item is None:
                    return
                label, path, body = item
                started = time.perf_counter()
                try:
                    status = http.post(path, json=body).status_code
                except httpx.HTTPError:
                    status = 0  # no answer at all
                with lock:
                    results.append((label, status, time.perf_counter() - started))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(results: list[tuple[str, int, float]], seconds: float) -> None:
    errors = Counter(status for _, status, _ in results if status != 200)
    print(f"requests   {len(results)} in {seconds:.1f} s: {len(results) / seconds:.1f} requests/s")
    print(f"errors     {sum(errors.values())}" + (f" {dict(errors)}" if errors else ""))
    print(f"{'request':<18} {'count':>5} {'p50 ms':>8} {'p95 ms':>8}")
    for label in sorted({label for label, _, _ in results}) + ["all"]:
        times = [t for lab, _, t in results if label in ("all", lab)]
        print(f"{label:<18} {len(times):>5} {1000 * statistics.median(times):>8.0f} "
              f"{1000 * percentile(times, 0.95):>8.0f}")


def main() -> None:
    args = parse_args()
    server, url = start_server(args)
    try:
        with httpx.Client(base_url=url, timeout=300) as http:
            run_ids = [run["id"] for run in http.get("/api/runs").json() if run["has_checkpoint"]]
            for run_id in run_ids:  # load every model once, outside the measurement
                warm = http.post(f"/api/runs/{run_id}/translate", json={"sentences": [SENTENCES[0]], "beam": 1})
                print(f"warm-up    {run_id}: model loaded in {warm.json()['load_seconds']:.2f} s")
            before = memory_mb(server.pid)
            plan = list(itertools.islice(requests_for(run_ids), args.requests))
            started = time.perf_counter()
            results = run_clients(url, plan, args.clients)
            seconds = time.perf_counter() - started
            cache = http.get("/api/status").json()["cache"]
        print(f"server     {len(run_ids)} runs, --workers {args.workers} --queue {args.queue}; "
              f"{args.clients} clients")
        report(results, seconds)
        after = memory_mb(server.pid)
        print(f"memory     server resident {before['VmRSS']:.0f} MB after warm-up, {after['VmRSS']:.0f} MB after the "
              f"load, peak {after['VmHWM']:.0f} MB; model cache {cache['bytes'] / 2**20:.1f} MB of "
              f"{cache['max_bytes'] / 2**20:.0f} MB ({len(cache['models'])} models)")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)


if __name__ == "__main__":
    main()
