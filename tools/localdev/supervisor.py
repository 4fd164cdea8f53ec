"""The local platform's process supervisor: honcho's output and signals, Kubernetes' restart policy.

honcho's own ``Manager`` ends the whole run when any one process exits, which
drops the Pub/Sub emulator's queued messages with it and is not how the
platform behaves in the cluster. ``Supervisor`` keeps honcho's pieces (each
Procfile line in its own process group through ``honcho.process.Process``,
the prefixed and coloured ``Printer`` output) and changes the policy:

- a process that exits while the run goes on is started again after a
  back-off (1 s, doubling to ``MAX_BACKOFF_SECONDS``; reset once it ran
  ``STABLE_AFTER_SECONDS``), like a pod's ``restartPolicy: Always`` with
  CrashLoopBackOff. Exception: a process listed in ``fatal`` exiting with
  status 1 (``bootstrap``: a setup step failed) ends the run, as before;
- a liveness check per service (``liveness={name: url}``) mirrors the chart's
  liveness probe: once the URL answered 200, ``LIVENESS_FAILURES`` failed
  checks in a row (``LIVENESS_PERIOD_SECONDS`` apart) SIGTERM the process
  group, and the restart policy starts it again (an extractor whose streaming
  pull died after an emulator restart reports 503 on ``/healthz``);
- Ctrl-C / SIGTERM: SIGTERM to every process group, SIGKILL after
  ``stop_timeout`` seconds; nothing outlives the run;
- the state of every process (pid, restarts, last exit status) is written to
  ``state_file`` (``<data_dir>/run/processes.json``) on every change: what
  ``make dev-status`` shows.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import queue
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from honcho.colour import get_colours
from honcho.compat import ProcessManager
from honcho.printer import Message, Printer
from honcho.process import Process

#: Longest wait before a crashed process is started again, seconds.
MAX_BACKOFF_SECONDS = 30.0
#: A process that ran this long is "stable": its next crash restarts it after 1 s again.
STABLE_AFTER_SECONDS = 60.0
#: Liveness: period, and consecutive failures that restart the process (the chart's probe: 10 s x 3).
LIVENESS_PERIOD_SECONDS = 5.0
LIVENESS_FAILURES = 3
#: Exit status with which a ``fatal`` process ends the run (``bootstrap``: a setup step failed).
FATAL_STATUS = 1
SYSTEM = "system"


@dataclass
class ProcState:
    """What ``processes.json`` records per process."""

    pid: int | None = None
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0
    last_exit: int | None = None
    started_at: float | None = None


class Supervisor:
    """Runs named shell commands until stopped; restarts what exits (see the module doc).

    Args:
        printer: where the prefixed output goes.
        stop_timeout: seconds between SIGTERM and SIGKILL at shutdown.
        fatal: process names whose exit with ``FATAL_STATUS`` ends the run.
        liveness: ``{process name: URL}`` checked as described above.
        state_file: where the process table is written (None: nowhere).
    """

    def __init__(self, printer: Printer, *, stop_timeout: float = 35.0, fatal: tuple[str, ...] = (),
                 liveness: Mapping[str, str] | None = None, state_file: Path | None = None) -> None:
        self.events: multiprocessing.Queue = multiprocessing.Queue()
        self.printer = printer
        self.printer.width = len(SYSTEM)
        self.stop_timeout = stop_timeout
        self.fatal = fatal
        self.liveness = dict(liveness or {})
        self.state_file = state_file
        self.returncode: int | None = None
        self._colours = get_colours()
        self._procmgr = ProcessManager()
        self._procs: dict[str, Process] = {}
        self._workers: dict[str, multiprocessing.Process] = {}
        self.state: dict[str, ProcState] = {}
        self._backoff: dict[str, float] = {}
        self._restart_at: dict[str, float] = {}
        self._terminating = False
        self._lock = threading.Lock()

    def add_process(self, name: str, cmd: str, env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        """Register a Procfile line (started by ``loop``)."""
        assert name not in self._procs, "process names must be unique"
        self._procs[name] = Process(cmd, name=name, colour=next(self._colours), env=dict(env or os.environ), cwd=cwd)
        self.state[name] = ProcState()
        self._backoff[name] = 1.0
        self.printer.width = max(self.printer.width, len(name))

    # -- output / state -------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.printer.write(Message(type="line", data=text, time=datetime.datetime.now(), name=SYSTEM, colour=None))

    def _save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: asdict(s) for n, s in self.state.items()}, indent=2) + "\n")
        tmp.replace(self.state_file)

    # -- lifecycle ------------------------------------------------------------------------------
    def _start(self, name: str) -> None:
        worker = multiprocessing.Process(name=name, target=self._procs[name].run, args=(self.events, True))
        worker.start()
        self._workers[name] = worker
        st = self.state[name]
        st.state, st.pid, st.started_at = "starting", None, time.time()

    def _on_stop(self, name: str, code: int) -> None:
        st = self.state[name]
        ran = time.time() - (st.started_at or time.time())
        st.state, st.last_exit, st.pid = "stopped", code, None
        self._say(f"{name} stopped (rc={code})\n")
        if self._terminating:
            return
        if name in self.fatal and code == FATAL_STATUS:
            self._say(f"{name} failed: stopping the platform\n")
            self.returncode = code
            self.terminate()
            return
        if ran >= STABLE_AFTER_SECONDS:
            self._backoff[name] = 1.0
        delay = self._backoff[name]
        self._backoff[name] = min(MAX_BACKOFF_SECONDS, delay * 2)
        self._restart_at[name] = time.monotonic() + delay
        st.state = "restarting"
        self._say(f"{name} exited; restarting it in {delay:g}s (restart #{st.restarts + 1})\n")

    def terminate(self) -> None:
        """SIGTERM every running process group (idempotent)."""
        if self._terminating:
            return
        self._terminating = True
        for name in self._restart_at:
            self.state[name].state = "stopped"
        self._restart_at.clear()
        self._signal_all(force=False)

    def _signal_all(self, *, force: bool) -> None:
        for name, st in self.state.items():
            if st.pid is not None and st.state != "stopped":
                self._say(f"sending {'SIGKILL' if force else 'SIGTERM'} to {name} (pid {st.pid})\n")
                (self._procmgr.kill if force else self._procmgr.terminate)(st.pid)

    def _liveness_loop(self) -> None:
        failures: dict[str, int] = {}
        seen_ok: dict[str, int | None] = {}
        while not self._terminating:
            time.sleep(LIVENESS_PERIOD_SECONDS)
            for name, url in self.liveness.items():
                st = self.state.get(name)
                if st is None or st.pid is None or st.state != "running":
                    failures[name] = 0
                    continue
                ok = _http_ok(url)
                if ok:
                    seen_ok[name], failures[name] = st.pid, 0
                    continue
                if seen_ok.get(name) != st.pid:
                    continue  # not answered yet since this start: still booting
                failures[name] = failures.get(name, 0) + 1
                if failures[name] >= LIVENESS_FAILURES and not self._terminating:
                    self._say(f"{name}: liveness {url} failed {failures[name]} times; restarting it\n")
                    failures[name] = 0
                    seen_ok[name] = None
                    self._procmgr.terminate(st.pid)

    def loop(self) -> int:
        """Start everything; supervise until Ctrl-C/SIGTERM (or a fatal exit); return the exit status."""
        def _stop(signum: int, _frame: Any) -> None:
            self._say(f"{signal.Signals(signum).name} received\n")
            if self.returncode is None:
                self.returncode = 130 if signum == signal.SIGINT else 143
            self.terminate()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        for name in self._procs:
            self._start(name)
        self._save()
        if self.liveness:
            threading.Thread(target=self._liveness_loop, name="liveness", daemon=True).start()
        kill_at: float | None = None
        while True:
            try:
                msg = self.events.get(timeout=0.1)
            except queue.Empty:
                msg = None
            if msg is not None:
                if msg.type == "line":
                    self.printer.write(msg)
                elif msg.type == "start":
                    st = self.state[msg.name]
                    st.pid, st.state = msg.data["pid"], "running"
                    self._say(f"{msg.name} started (pid={st.pid})\n")
                    if self._terminating:  # started while stopping: stop it too
                        self._procmgr.terminate(st.pid)
                    self._save()
                elif msg.type == "stop":
                    self._on_stop(msg.name, msg.data["returncode"])
                    self._save()
            now = time.monotonic()
            for name, at in list(self._restart_at.items()):
                if now >= at and not self._terminating:
                    del self._restart_at[name]
                    self.state[name].restarts += 1
                    self._start(name)
                    self._save()
            if self._terminating:
                if all(st.state == "stopped" for st in self.state.values()) and self.events.empty():
                    break
                if kill_at is None:
                    kill_at = now + self.stop_timeout
                elif now > kill_at:
                    self._signal_all(force=True)
                    kill_at = now + 5
        for worker in self._workers.values():
            worker.join(timeout=5)
        self._save()
        return self.returncode or 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
