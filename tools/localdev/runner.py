"""``make dev``: check, then run the Procfile under the supervisor until Ctrl-C / ``make dev-stop``.

``up()``:

1. resolves ``LocalConfig`` (ports, data folder, stack names);
2. preflight: every port free (``PortBusy`` names each busy one and who
   wanted it), the backend programs present (PostgreSQL server binaries,
   ``gcloud`` + Java for the Pub/Sub emulator, the fake-gcs-server binary);
3. takes ``<data_dir>/run/lock`` (one platform per data folder), clears old
   stage markers, writes ``<data_dir>/run/stack.json`` (URLs, ports, names,
   run id; what ``make demo`` and ``proc`` read);
4. runs every ``tools/localdev/Procfile`` process under ``supervisor.Supervisor``
   (honcho's process groups and prefixed, coloured output): a process that
   exits is started again after a back-off, a service whose ``/healthz``
   keeps failing is restarted, a failed ``bootstrap`` ends the run; on
   Ctrl-C/SIGTERM (``make dev-stop``) every process group gets SIGTERM and
   SIGKILL after ``stop_timeout_seconds`` - no process outlives the run.
   ``<data_dir>/run/processes.json`` holds the process table (``make dev-status``).

``proc(name)`` runs one Procfile process of an already running platform in
the foreground (same command and environment), for a process left out with
``up(skip=...)`` or restarted by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import stages
from .config import LocalConfig
from .ports import check_ports_free

#: The Procfile ``make dev`` runs.
PROCFILE = Path(__file__).resolve().parent / "Procfile"


class PreflightError(RuntimeError):
    """Something the platform needs is missing or already taken; the message says what and how to fix it."""


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """``{process name: shell command}`` of the Procfile, in file order.

    Raises:
        PreflightError: the file is missing or has no processes.
    """
    from honcho.environ import parse_procfile

    try:
        procfile = parse_procfile(path.read_text())
    except OSError as exc:
        raise PreflightError(f"cannot read the Procfile {path}: {exc.strerror}") from None
    if not procfile.processes:
        raise PreflightError(f"{path} defines no processes")
    return dict(procfile.processes)


def check_programs() -> None:
    """Raise ``PreflightError`` listing every backend program that is missing, with how to install it."""
    from tools.devstack import LauncherError, find_fake_gcs_binary, find_pg_bindir
    from tools.devstack.pubsub import find_gcloud

    problems = []
    for probe in (find_pg_bindir, find_gcloud, find_fake_gcs_binary):
        try:
            probe()
        except LauncherError as exc:
            problems.append(str(exc))
    if shutil.which("java") is None:
        problems.append("java not found on PATH: the Pub/Sub emulator needs a Java 17+ runtime (apt install openjdk-17-jre-headless)")
    if problems:
        raise PreflightError("the local platform cannot start:\n  " + "\n  ".join(problems))


@contextlib.contextmanager
def data_lock(cfg: LocalConfig) -> Iterator[None]:
    """Hold ``<data_dir>/run/lock`` (flock) for the run.

    Raises:
        PreflightError: another ``make dev`` uses the same data folder.
    """
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.run_dir / "lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise PreflightError(
                f"another local platform (pid {holder}) already uses {cfg.data_dir}; stop it first "
                "or give this one its own folder with LOCALDEV_DATA_DIR"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare_data_dir(cfg: LocalConfig) -> None:
    """Create the data folder (mode 0755: PostgreSQL, run as ``postgres`` under root, must traverse it)."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        cfg.data_dir.chmod(0o755)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)


def read_stack_file(data_dir: Path) -> dict[str, Any]:
    """``<data_dir>/run/stack.json`` of the running platform.

    Raises:
        FileNotFoundError: no platform has been started with this data folder (or it stopped).
    """
    path = data_dir / "run" / "stack.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no running local platform found ({path} is missing): start it with make dev") from None


def up(cfg: LocalConfig, *, skip: Sequence[str] = (), printer: Any = None) -> int:
    """Run the platform until Ctrl-C / SIGTERM (or a failed bootstrap); return the exit status.

    Args:
        skip: Procfile process names not to start (e.g. ``extractor``, to run
            it separately with ``proc``).
        printer: a ``honcho.printer.Printer`` (default: stdout, coloured on a TTY).

    Returns:
        0 after a clean stop by signal; 1 when bootstrap failed.

    Raises:
        PreflightError / ports.PortBusy: before anything was started.
    """
    from honcho.printer import Printer

    from .supervisor import Supervisor

    commands = procfile_commands()
    unknown = sorted(set(skip) - set(commands))
    if unknown:
        raise PreflightError(f"unknown process(es) to skip: {', '.join(unknown)}; the Procfile has {', '.join(commands)}")
    ports = dict(cfg.ports)
    if "extractor" in skip:
        ports.pop("EXTRACTOR_PORT")
    if "files-api" in skip:
        ports.pop("FILES_API_PORT")
        ports.pop("FILES_API_OPS_PORT")
    check_ports_free(ports)
    check_programs()
    prepare_data_dir(cfg)
    with data_lock(cfg):
        run_id = uuid.uuid4().hex
        stages.clear(cfg.run_dir)
        stack_file = cfg.run_dir / "stack.json"
        stack_file.write_text(json.dumps({**cfg.describe(), "run_id": run_id, "pid": os.getpid(),
                                          "skipped": list(skip)}, indent=2) + "\n")
        env = cfg.process_env(run_id, tty=sys.stdout.isatty())
        liveness = {svc: f"{url}/healthz" for svc, url in (("files-api", cfg.files_api_url),
                                                            ("extractor", cfg.extractor_url)) if svc not in skip}
        # SIGKILL what is still alive this long after SIGTERM: long enough for the
        # services' graceful shutdown (the extractor drains).
        manager = Supervisor(printer or Printer(sys.stdout, colour=sys.stdout.isatty()),
                             stop_timeout=cfg.stop_timeout_seconds, fatal=("bootstrap",), liveness=liveness,
                             state_file=cfg.run_dir / "processes.json")
        for name, command in commands.items():
            if name not in skip:
                manager.add_process(name, command, env=env, cwd=str(cfg.root))
        try:
            code = manager.loop()
        finally:
            stack_file.unlink(missing_ok=True)
            stages.clear(cfg.run_dir)
    return 0 if code in (130, 143) else code


def proc_command(cfg: LocalConfig, name: str) -> tuple[str, dict[str, str]]:
    """The shell command and environment of Procfile process ``name`` in the running platform.

    Raises:
        PreflightError: no such process, or the ports differ from the running platform's.
        FileNotFoundError: the platform is not running (no ``stack.json``).
    """
    commands = procfile_commands()
    if name not in commands:
        raise PreflightError(f"no process {name!r} in {PROCFILE}; it has {', '.join(commands)}")
    run = read_stack_file(cfg.data_dir)
    if run.get("ports") != cfg.ports:
        raise PreflightError(
            f"the platform running on {cfg.data_dir} uses ports {run.get('ports')}, this shell says {cfg.ports}: "
            "set the same port variables as for make dev"
        )
    return commands[name], cfg.process_env(run["run_id"])


def proc(cfg: LocalConfig, name: str) -> int:
    """Run one process of the running platform in the foreground; return its exit status."""
    command, env = proc_command(cfg, name)
    return subprocess.call(command, shell=True, env=env, cwd=str(cfg.root))
