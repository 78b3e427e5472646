"""Finding the runs (and comparison reports) a server offers, once, when it starts.

A PATH given to ``attnlab serve`` is a run directory, a sweep folder (runs side by side, with the
comparison in ``report/report.html``) or any folder of runs or sweeps. Folders are walked a few levels
deep; a run directory (``config.yaml`` and ``data.json``) is not descended into, and neither are
hidden folders or a sweep's ``prepared/`` data. Each run gets an id made from its folder name (its
parent's name is added when two runs share a name); requests name runs by these ids only, so a
request can never make the server open a path of its choosing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnlab.rundir import RunDir, RunError, open_run

__all__ = ["RunEntry", "ReportEntry", "Catalog", "discover"]

MAX_DEPTH = 3  # runs/sweeps/attention/dot is three levels below runs/
_SKIPPED = {"prepared", "__pycache__"}  # a sweep's shared data; run folders themselves are never entered
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class RunEntry:
    """One run offered by the server: its id, display name, folder, and the folder that groups it."""

    id: str
    name: str
    run: RunDir
    group: str = ""  # the sweep or folder the run was found in ("" for a run given directly)
    report_id: str | None = None  # the group's comparison report, when it has one

    @property
    def root(self) -> Path:
        return self.run.root


@dataclass(frozen=True)
class ReportEntry:
    """A comparison report (``report.html`` written by ``attnlab sweep`` or ``attnlab compare``)."""

    id: str
    title: str
    path: Path


@dataclass
class Catalog:
    """Everything found at start-up, by id."""

    runs: dict[str, RunEntry] = field(default_factory=dict)
    reports: dict[str, ReportEntry] = field(default_factory=dict)


def discover(paths: Sequence[str | Path]) -> Catalog:
    """Walk ``paths`` for runs and reports; raise :class:`RunError` when a path is missing or nothing is found."""
    found: list[tuple[Path, str]] = []  # (run folder, group)
    reports: list[Path] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            raise RunError(f"{given} is not a directory (give a run directory, a sweep folder or a folder of runs)")
        if _is_run(path):
            found.append((path, ""))
        else:
            _walk(path, path.name, 0, found, reports)
    if not found:
        shown = ", ".join(str(p) for p in paths)
        raise RunError(f"no runs found in {shown} (a run directory holds config.yaml and data.json, as "
                       "'attnlab train' writes it)")
    return _catalog(_unique(found), reports)


def _is_run(path: Path) -> bool:
    try:
        open_run(path)
    except RunError:
        return False
    return True


def _walk(folder: Path, group: str, depth: int, found: list[tuple[Path, str]], reports: list[Path]) -> None:
    """Collect the runs below ``folder`` (grouped by the folder that holds them) and any reports."""
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:  # unreadable folder: skip it rather than refuse to serve the rest
        return
    for child in children:
        if _is_run(child):
            found.append((child, group))
        elif child.name == "report" and (child / REPORT_NAME).is_file():
            reports.append(child / REPORT_NAME)
        elif depth + 1 < MAX_DEPTH and child.name not in _SKIPPED:
            _walk(child, child.name, depth + 1, found, reports)
    if (folder / REPORT_NAME).is_file():
        reports.append(folder / REPORT_NAME)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _unique(found: Iterable[tuple[Path, str]]) -> list[tuple[str, Path, str]]:
    """(id, folder, group) per run, in a stable order; a shared name gets its parent's name in front."""
    runs = sorted(dict.fromkeys(found), key=lambda item: (item[1], str(item[0])))
    names = [path.name for path, _ in runs]
    labelled = [(f"{path.parent.name}.{path.name}" if names.count(path.name) > 1 else path.name, path, group)
                for path, group in runs]
    taken: set[str] = set()
    unique = []
    for label, path, group in labelled:
        candidate, n = _slug(label), 1
        while candidate in taken:
            n += 1
            candidate = f"{_slug(label)}-{n}"
        taken.add(candidate)
        unique.append((candidate, path, group))
    return unique


def _catalog(runs: list[tuple[str, Path, str]], reports: list[Path]) -> Catalog:
    catalog = Catalog()
    by_folder: dict[Path, str] = {}
    for path in dict.fromkeys(reports):
        owner = path.parent.parent if path.parent.name == "report" else path.parent  # the sweep folder
        report_id = _slug(owner.name)
        while report_id in catalog.reports:
            report_id += "-x"
        catalog.reports[report_id] = ReportEntry(report_id, owner.name, path)
        by_folder[owner] = report_id
    for run_id, path, group in runs:
        entry = RunEntry(run_id, path.name, RunDir(path), group, by_folder.get(path.parent))
        catalog.runs[run_id] = entry
    return catalog
