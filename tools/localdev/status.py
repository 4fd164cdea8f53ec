"""``make dev-status``: what runs on the local platform, what answers, and the pipeline's backlog.

Reads ``<data_dir>/run/stack.json`` (the running platform, its URLs) and
``<data_dir>/run/processes.json`` (the supervisor's process table), probes
each server, and reads the backlog gauges from the extractor's ``/metrics``
(``extractor.backlog``). Prints one table; exit status 0 when every process
runs and every server is ready, 1 otherwise, 3 when no platform runs.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from .config import LocalConfig

#: Backlog gauges shown, in order (name -> label).
BACKLOG = {
    'pipeline_pending_files{older_than_seconds="0"}': "pending files",
    "pipeline_pending_oldest_age_seconds": "oldest pending (s)",
    "pipeline_pending_redriven_files": "pending, re-driven",
    "pipeline_unfinished_uploads": "unfinished uploads",
}


def _get(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def backlog(metrics_text: str) -> dict[str, float]:
    """The ``BACKLOG`` samples found in a Prometheus exposition text."""
    found: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        if name in BACKLOG:
            try:
                found[name] = float(value)
            except ValueError:
                continue
    return found


def collect(cfg: LocalConfig) -> dict[str, Any]:
    """Everything ``main`` prints, as data. Raises ``FileNotFoundError`` when no platform runs."""
    from tools.devstack.process import port_open

    from .runner import read_stack_file

    run = read_stack_file(cfg.data_dir)
    try:
        procs = json.loads((cfg.run_dir / "processes.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        procs = {}
    servers = {
        "files-api": _get(f"{cfg.files_api_url}/readyz")[0] == 200,
        "extractor": _get(f"{cfg.extractor_url}/readyz")[0] == 200,
        "postgres": port_open("127.0.0.1", cfg.ports["PG_PORT"]),
        "pubsub": _get(f"http://{cfg.pubsub_host}/")[0] == 200,
        "gcs": port_open("127.0.0.1", cfg.ports["GCS_PORT"]),
    }
    status, text = _get(f"{cfg.extractor_url}/metrics")
    return {"runner_pid": run.get("pid"), "runner_alive": _alive(run.get("pid")), "processes": procs,
            "servers": servers, "backlog": backlog(text) if status == 200 else {},
            "final_bound_seconds": run.get("final_bound_seconds")}


def main(cfg: LocalConfig) -> int:
    """Print the status table; see the module doc for the exit status."""
    try:
        data = collect(cfg)
    except FileNotFoundError:
        print(f"no local platform runs on {cfg.data_dir} (start it with make dev)")
        return 3
    now = time.time()
    print(f"local platform (runner pid {data['runner_pid']}, {'running' if data['runner_alive'] else 'GONE'}) "
          f"on {cfg.data_dir}")
    print(f"  {'process':<11} {'state':<11} {'pid':>8} {'restarts':>8} {'last exit':>9} {'up (s)':>8}  server")
    healthy = data["runner_alive"]
    for name, st in data["processes"].items():
        state = st.get("state", "?")
        pid = st.get("pid")
        if state == "running" and not _alive(pid):
            state = "dead?"
        server = data["servers"].get(name)
        server_text = "" if server is None else ("ready" if server else "NOT READY")
        up = f"{now - st['started_at']:.0f}" if st.get("started_at") and state == "running" else "-"
        last = "-" if st.get("last_exit") is None else str(st["last_exit"])
        print(f"  {name:<11} {state:<11} {pid or '-':>8} {st.get('restarts', 0):>8} {last:>9} {up:>8}  {server_text}")
        healthy = healthy and state == "running" and server is not False
    if data["backlog"]:
        parts = [f"{label} {data['backlog'][name]:g}" for name, label in BACKLOG.items() if name in data["backlog"]]
        print("  backlog: " + ", ".join(parts) + f" (bound {data['final_bound_seconds']}s)")
    else:
        print("  backlog: unknown (the extractor's /metrics does not answer)")
    return 0 if healthy else 1
