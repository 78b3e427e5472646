"""Finding runs and reports at start-up, the loopback warning, and ``attnlab serve`` end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.rundir import RunError
from attnlab.serve import discover
from attnlab.serve.server import bind, exposure_warning, is_loopback


def _run(folder: Path) -> Path:
    """The two files that make a folder a run directory (enough for discovery, which loads nothing)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model:\n  arch: transformer\n")
    (folder / "data.json").write_text("{}")
    return folder


def test_a_run_a_sweep_and_a_folder_of_sweeps(tmp_path: Path) -> None:
    single = _run(tmp_path / "alone")
    for name in ("dot", "general"):
        _run(tmp_path / "runs" / "sweeps" / "attention" / name)
    (tmp_path / "runs" / "sweeps" / "attention" / "report").mkdir()
    (tmp_path / "runs" / "sweeps" / "attention" / "report" / "report.html").write_text("<p>report</p>")
    _run(tmp_path / "runs" / "quick" / "dot")  # a second "dot"
    _run(tmp_path / "runs" / "quick" / "dot" / "nested")  # inside a run: not looked for
    _run(tmp_path / "runs" / ".hidden" / "x")
    _run(tmp_path / "runs" / "sweeps" / "attention" / "prepared" / "y")
    catalog = discover([single, tmp_path / "runs"])
    assert sorted(catalog.runs) == ["alone", "attention.dot", "general", "quick.dot"]
    assert catalog.runs["general"].group == "attention" and catalog.runs["alone"].group == ""
    assert catalog.runs["general"].report_id == catalog.runs["attention.dot"].report_id == "attention"
    assert catalog.runs["quick.dot"].report_id is None
    assert catalog.reports["attention"].path.name == "report.html"


def test_missing_paths_and_empty_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="is not a directory"):
        discover([tmp_path / "nowhere"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(RunError, match="no runs found in .*config.yaml and data.json"):
        discover([tmp_path / "empty"])


def test_only_loopback_is_quiet() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"):
        assert is_loopback(host) and exposure_warning(host) is None
    for host in ("0.0.0.0", "::", "192.168.1.10", "myhost.example"):
        assert "reachable from other machines; it has no authentication" in exposure_warning(host)


def test_cli_user_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers is 0; it must be >= 1" in capsys.readouterr().err
    taken = bind("127.0.0.1", 0)
    try:
        _run(tmp_path / "run")
        assert main(["serve", str(tmp_path), "--port", str(taken.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
    finally:
        taken.close()


def test_attnlab_serve_runs_and_stops_on_ctrl_c(serve_runs) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "attnlab", "serve", str(serve_runs["sweep"]), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first, second = server.stdout.readline(), server.stdout.readline()
        assert "attnlab serve: 2 runs, 1 report: gru, transformer" in first, first + server.stderr.read()
        url = second.split("open ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/runs", timeout=60) as response:
            assert {run["id"] for run in json.load(response)} == {"gru", "transformer"}
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
        assert server.returncode == 0 and "attnlab serve: stopped" in out and "warning" not in err
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_serve_reads_runs_by_default_and_warns_off_loopback(tmp_path: Path, capsys, monkeypatch) -> None:
    import uvicorn

    def stop_at_once(self, sockets=None) -> None:
        for sock in sockets or []:
            sock.close()
        raise KeyboardInterrupt  # what uvicorn passes on after Ctrl-C

    monkeypatch.setattr(uvicorn.Server, "run", stop_at_once)
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "runs" / "mine")
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 0
    captured = capsys.readouterr()
    assert "attnlab serve: 1 run: mine" in captured.out and "attnlab serve: stopped" in captured.out
    assert captured.err.count("\n") == 1 and "reachable from other machines; it has no authentication" in captured.err
