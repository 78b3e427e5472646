"""``attnlab serve``: a browser explorer and a REST API over trained runs.

The page (``static/``, plain JavaScript and CSS shipped in the package, nothing fetched from the
network) lists the runs with their curves and reports, translates, shows attention through the
same interactive view as the per-sentence pages and notebooks (:mod:`attnlab.attention_view.html`), and puts
two runs side by side. Module by module:

- :mod:`.discovery` finds runs and reports under the given paths, once, at start-up;
- :mod:`.runinfo` reads what a run's files say (config, summary, scores, curves);
- :mod:`.cache` loads models on first use and keeps them within a memory budget;
- :mod:`.limits` bounds each request, and the server's concurrent work (503 beyond it);
- :mod:`.explorer` does the work of each request; :mod:`.app` is the FastAPI app and its routes;
- :mod:`.server` runs it on uvicorn (``serve``).

FastAPI and uvicorn are the optional ``serve`` extra: ``pip install 'attnlab[serve]'``.
"""

from __future__ import annotations

from attnlab.serve.app import create_app
from attnlab.serve.discovery import Catalog, RunEntry, discover
from attnlab.serve.explorer import Explorer
from attnlab.serve.limits import Limits
from attnlab.serve.server import serve

__all__ = ["serve", "create_app", "discover", "Catalog", "RunEntry", "Explorer", "Limits"]
