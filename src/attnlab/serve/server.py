"""``serve``: find the runs, build the app, and run it on uvicorn until Ctrl-C."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from attnlab.serve.discovery import discover
from attnlab.serve.explorer import Explorer
from attnlab.serve.limits import Limits

__all__ = ["serve", "is_loopback", "bind", "exposure_warning", "ListenError"]


class ListenError(OSError):
    """The server cannot listen where asked (the port is taken, the address is not this machine's, ...)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): nothing else can reach them."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def exposure_warning(host: str) -> str | None:
    """The warning printed when the server listens beyond this machine, or None on loopback."""
    if is_loopback(host):
        return None
    return (f"warning: listening on {host} makes the explorer, and the models it runs, reachable from other "
            "machines; it has no authentication. Use --host 127.0.0.1 to keep it on this machine.")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 picks a free port); :class:`ListenError` if impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except OSError as err:
        raise ListenError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def serve(paths: Sequence[str | Path], host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          queue: int = 32, cache_mb: int = 1024, limits: Limits | None = None,
          log: Callable[[str], None] = print) -> None:
    """Serve the explorer over the runs in ``paths`` until interrupted.

    ``workers`` requests run models at once (each with ``cores / workers`` torch threads), ``queue``
    more may wait, and loaded models are kept within ``cache_mb`` megabytes.
    """
    import torch
    import uvicorn

    from attnlab.serve.app import create_app

    catalog = discover(paths)
    app = create_app(Explorer(catalog, limits, cache_mb * 2**20), workers=workers, queue=queue)
    sock = bind(host, port)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    warning = exposure_warning(host)
    if warning:
        print(f"attnlab serve: {warning}", file=sys.stderr, flush=True)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    reports = f", {len(catalog.reports)} report{'s' * (len(catalog.reports) != 1)}" if catalog.reports else ""
    log(f"attnlab serve: {len(catalog.runs)} run{'s' * (len(catalog.runs) != 1)}{reports}: "
        + ", ".join(list(catalog.runs)[:8]) + (", ..." if len(catalog.runs) > 8 else ""))
    log(f"attnlab serve: open http://{shown_host}:{bound_port}/ (API documentation at /docs); Ctrl-C stops")
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
