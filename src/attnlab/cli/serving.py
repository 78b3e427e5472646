"""``attnlab serve``: the attention explorer in the browser, over trained runs."""

from __future__ import annotations

import argparse
import sys

from attnlab.cli.common import at_least

__all__ = ["add_commands"]


def cmd_serve(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn", "fastapi_offline") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"attnlab: error: 'attnlab serve' needs {', '.join(missing)}; install them with "
              "pip install 'attnlab[serve]'", file=sys.stderr)
        return 2
    at_least(1, workers=args.workers, cache_mb=args.cache_mb)
    at_least(0, queue=args.queue)
    from attnlab.serve.server import ListenError, serve  # imports FastAPI only when serving

    try:
        serve(args.paths or ["runs"], host=args.host, port=args.port, workers=args.workers, queue=args.queue,
              cache_mb=args.cache_mb, log=lambda line: print(line, flush=True))
    except ListenError as err:
        print(f"attnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then passes the signal on: the normal way out
        pass
    print("attnlab serve: stopped")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="explore runs in the browser: translate, attention, curves, two runs side by side",
        description="Serve a web page and a REST API (documented at /docs) over trained runs: the runs with their "
                    "curves and reports, translation (greedy or beam, n-best), every attention map of a sentence "
                    "(kind, layer, head, layers x heads, forced decoding of a reference, the model at "
                    "initialisation beside the trained one) and two runs side by side. PATH is a run directory, a "
                    "sweep folder or a folder of runs (default runs/). Models load on first use. Everything works "
                    "offline; listening beyond 127.0.0.1 prints a warning, as the server has no authentication.",
    )  # fmt: skip
    serve.add_argument("paths", nargs="*", metavar="PATH", help="run directories or folders of runs (default runs/)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=int, default=2, help="requests that run models at once (default 2)")
    serve.add_argument("--queue", type=int, default=32,
                       help="requests that may wait for a worker; more are refused with 503 (default 32)")
    serve.add_argument("--cache-mb", type=int, default=1024,
                       help="memory for loaded models, least recently used dropped first (default 1024)")
    serve.set_defaults(func=cmd_serve)


