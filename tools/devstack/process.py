"""A managed child process: the common machinery of the devstack launchers.

Each launcher (``PostgresServer``, ``PubSubEmulator``, ``FakeGcsServer``) says
what to run (``command()``, ``env()``), how to prepare its data dir
(``prepare()``) and when it is ready (``is_ready()``); this base class starts
it in its own process group on loopback, waits for readiness, and on stop
signals the whole group (SIGTERM, then SIGKILL after a grace period), so no
grandchild (the JVM under gcloud, say) outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connect to ``host:port`` succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class LauncherError(RuntimeError):
    """A backend failed to start, exited early, or never became ready; the message holds its log tail."""


class ManagedProcess:
    """Base class of the launchers. Subclasses implement ``command``, ``is_ready``, optionally ``prepare``/``env``/``after_start``.

    Args:
        name: short name for messages and the log file (``<data_dir>/<name>.log``).
        data_dir: where the backend keeps its state; a fresh temp dir (removed
            on stop) when None.
        port: TCP port on ``host``; a free one when None.
        host: bind address, loopback by default.
        ready_timeout: seconds ``start()`` waits for ``is_ready()``.
    """

    name = "process"
    stop_grace_seconds = 10.0
    #: Signal asking the backend to shut down cleanly (sent to its process group).
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, *, data_dir: str | os.PathLike[str] | None = None, port: int | None = None,
                 host: str = LOOPBACK, ready_timeout: float = 60.0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._owns_data_dir = data_dir is None
        self._data_dir = Path(data_dir) if data_dir else None
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """The backend's state directory (a fresh temp dir, made on first use, when none was given)."""
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix=f"devstack-{self.name}-"))
        return self._data_dir

    # -- what subclasses define ------------------------------------------------
    def command(self) -> list[str]:
        """The foreground command line of the backend (argv)."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        """Environment of the backend process (default: ours)."""
        return dict(os.environ)

    def prepare(self) -> None:
        """Create or initialise ``data_dir`` (idempotent). Default: mkdir."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def is_ready(self) -> bool:
        """True once the backend answers requests."""
        raise NotImplementedError

    def after_start(self) -> None:
        """Hook run once the backend is ready (e.g. create a database)."""

    def popen_kwargs(self) -> dict[str, object]:
        """Extra ``subprocess.Popen`` keyword arguments (e.g. ``user=``)."""
        return {}

    # -- lifecycle -------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        """File receiving the backend's stdout and stderr."""
        return self.data_dir / f"{self.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the backend's log (empty if none yet)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> Self:
        """Prepare, launch, wait until ready. Stops the process again if that fails.

        Raises:
            LauncherError: the port is taken, the process exited, or it was not
                ready within ``ready_timeout``.
        """
        if self.process is not None:
            raise LauncherError(f"{self.name} already started (pid {self.process.pid})")
        if port_open(self.host, self.port):
            raise LauncherError(f"{self.name}: {self.host}:{self.port} is already in use by another process")
        self.prepare()
        self._log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                self.command(), env=self.env(), stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, start_new_session=True, **self.popen_kwargs(),  # type: ignore[arg-type]
            )
            self.wait_ready()
            self.after_start()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        """Poll ``is_ready()`` until true. Raises ``LauncherError`` on exit or timeout."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise LauncherError(
                    f"{self.name} exited with code {self.process.returncode} before it was ready; "
                    f"command {self.command()!r}; log {self.log_path}:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"{self.name} not ready on {self.host}:{self.port} after {self.ready_timeout:g}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process group (SIGTERM, SIGKILL after ``stop_grace_seconds``); remove an own temp data dir."""
        proc, self.process = self.process, None
        if proc is not None:
            _terminate_group(proc, self.stop_grace_seconds, self.stop_signal)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._owns_data_dir and self._data_dir is not None:
            import shutil

            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    @property
    def running(self) -> bool:
        """True while the launched process is alive."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, port={self.port}, data_dir={str(self._data_dir)!r})"


def _terminate_group(proc: subprocess.Popen[bytes], grace: float, sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` to the process group of ``proc``; SIGKILL it if still alive after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    # Children may outlive the leader (gcloud's JVM); kill whatever is left in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
