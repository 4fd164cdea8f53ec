"""``LocalPlatform``: the local platform started the way ``make dev`` starts it, for the end-to-end tests.

``LocalPlatform`` runs ``python -m tools.localdev up`` (the same runner and
Procfile as ``make dev``) on free ports with its own data folder, so it never
clashes with a developer's running ``make dev``. The extractor is left out of
that run (``--skip extractor``) and started from the same Procfile line with
the same environment (``tools.localdev.runner.proc_command``), so a test can
SIGTERM it and start it again mid-run, as Kubernetes restarts a pod.

``load_manifest_module`` imports the corpus test's MANIFEST.tsv reader
(``tests/apps/manifest.py``) rather than copying it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.devstack import free_port
from tools.localdev.config import PORTS, LocalConfig
from tools.localdev.runner import proc_command
from tools.localdev.stages import StageTimeout, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_manifest_module() -> ModuleType:
    """``tests/apps/manifest.py`` as module ``manifest`` (the corpus test's own module when already imported)."""
    if "manifest" in sys.modules and hasattr(sys.modules["manifest"], "read_manifest"):
        return sys.modules["manifest"]
    path = REPO_ROOT / "tests" / "apps" / "manifest.py"
    spec = importlib.util.spec_from_file_location("manifest", path)
    assert spec and spec.loader, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules["manifest"] = module
    spec.loader.exec_module(module)
    return module


class LocalPlatform:
    """One local platform run in a temp data folder on free ports.

    Attributes:
        env: the environment the runner was started with (ports, ``LOCALDEV_DATA_DIR``).
        cfg: the ``LocalConfig`` resolved from ``env`` (what the runner resolves too).
        log_path: the runner's combined output (honcho's prefixed lines).
    """

    def __init__(self, data_dir: Path, *, skip: tuple[str, ...] = ("extractor",),
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.skip = skip
        self.env = {**os.environ, "LOCALDEV_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO", **(env or {})}
        self._pick_ports()
        self.log_path = data_dir / "e2e-runner.log"
        self.extractor_log_path = data_dir / "e2e-extractor.log"
        self.runner: subprocess.Popen[bytes] | None = None
        self.extractor: subprocess.Popen[bytes] | None = None
        self.run_id = ""

    def _pick_ports(self) -> None:
        self.env.update({spec.var: str(free_port()) for spec in PORTS})
        self.cfg = LocalConfig.from_env(self.env)

    # -- the platform (runner) ---------------------------------------------------------
    def start(self, timeout: float = 180.0) -> None:
        """Start ``tools.localdev up --skip <skip>`` (then the extractor, when skipped); wait until both services are ready.

        A free port is picked before the server that binds it starts, so another process
        (the Pub/Sub emulator's JVM binds ephemeral ports of its own) can take it in
        between: that start, and only that, is retried once on new ports.
        """
        try:
            self._start_once(timeout)
        except AssertionError as exc:
            if "address already in use" not in str(exc):
                raise
            self.stop()
            self._pick_ports()
            self._start_once(timeout)

    def _start_once(self, timeout: float) -> None:
        log = open(self.log_path, "ab")
        skips = [arg for name in self.skip for arg in ("--skip", name)]
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "tools.localdev", "up", *skips], cwd=REPO_ROOT, env=self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        stack_file = self.cfg.run_dir / "stack.json"
        deadline = time.monotonic() + 30
        while True:
            if self.runner.poll() is not None:
                raise AssertionError(f"make dev runner exited with {self.runner.returncode}:\n{self.log_tail()}")
            try:
                self.run_id = json.loads(stack_file.read_text())["run_id"]
                break
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {stack_file} after 30s:\n{self.log_tail()}") from None
                time.sleep(0.2)
        if "extractor" in self.skip:
            self.start_extractor()
        self.wait_stage("ready", timeout)

    def wait_stage(self, stage: str, timeout: float) -> None:
        """Wait for a bootstrap stage of this run; fail with the runner's log when it stops first."""
        try:
            wait_for(self.cfg.run_dir, stage, self.run_id, timeout, alive=lambda: self.runner.poll() is None)
        except StageTimeout as exc:
            raise AssertionError(f"{exc}\n--- runner log ---\n{self.log_tail()}\n--- extractor log ---\n"
                                 f"{self.log_tail(self.extractor_log_path)}") from None

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C the runner (SIGINT, as a terminal does) and wait; return its exit status."""
        self.stop_extractor()
        if self.runner is None:
            return 0
        runner, self.runner = self.runner, None
        if runner.poll() is None:
            os.kill(runner.pid, signal.SIGINT)
        try:
            return runner.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
            raise AssertionError(f"the runner did not stop within {timeout:g}s of SIGINT:\n{self.log_tail()}") from None

    def processes(self) -> dict[str, dict]:
        """The supervisor's process table (``run/processes.json``)."""
        return json.loads((self.cfg.run_dir / "processes.json").read_text())

    def started_pids(self) -> list[int]:
        """PIDs honcho reported as started (``<name> started (pid=N)`` lines) over the whole log."""
        return [int(p) for p in re.findall(r"started \(pid=(\d+)\)", self.log_path.read_text(errors="replace"))]

    # -- the extractor, separately -----------------------------------------------------
    def start_extractor(self) -> None:
        """Start the Procfile's ``extractor`` line with the run's environment (a new process group)."""
        command, env = proc_command(LocalConfig.from_env(self.env), "extractor")
        env = {**env, **{k: v for k, v in self.env.items() if k == "LOG_LEVEL"}}
        log = open(self.extractor_log_path, "ab")
        self.extractor = subprocess.Popen(command, shell=True, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def stop_extractor(self, timeout: float = 60.0) -> int | None:
        """SIGTERM the extractor's process group (what honcho and Kubernetes send) and wait; return its status."""
        proc, self.extractor = self.extractor, None
        if proc is None:
            return None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"the extractor did not stop within {timeout:g}s of SIGTERM") from None

    def log_tail(self, path: Path | None = None, lines: int = 60) -> str:
        """The last ``lines`` lines of the runner's (or another) log."""
        try:
            return "\n".join((path or self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def new_data_dir() -> Path:
    """A fresh data folder under /tmp, traversable by the ``postgres`` user when we run as root."""
    path = Path(tempfile.mkdtemp(prefix="localdev-e2e-"))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def running_platform(**kwargs: Any) -> Iterator[LocalPlatform]:
    """A started :class:`LocalPlatform` in a fresh data folder (``kwargs`` go to its constructor);
    stopped and the folder removed on exit, whatever happened."""
    data_dir = new_data_dir()
    plat = LocalPlatform(data_dir, **kwargs)
    try:
        plat.start()
        yield plat
    finally:
        try:
            plat.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
