"""``python -m tools.localdev <command>``: the local platform's entry points.

Commands:

- ``up [--skip NAME ...]``: what ``make dev`` runs (see ``runner``).
- ``bootstrap``: the Procfile's one-shot setup process (see ``bootstrap``).
- ``start --after STAGE [--service NAME] -- CMD ...``: Procfile helper: wait
  for a bootstrap stage, add the service's environment, exec ``CMD``.
- ``proc NAME``: run one Procfile process of the running platform in the
  foreground (after ``up --skip NAME``, or to restart it).
- ``demo [--samples DIR]``: what ``make demo`` runs (see ``demo``).
- ``status``: what ``make dev-status`` runs: the running platform's processes
  (pid, restarts, last exit), readiness of each server, the backlog gauges;
  exit 0 when everything runs and is ready, 1 when something is not, 3 when
  no platform runs on the data folder.
- ``stop``: what ``make dev-stop`` runs: SIGTERM to the running platform (as
  Ctrl-C), wait until every process has stopped.
- ``faults FAULT [--uploads N]``: a batch of uploads with kill -9 of one
  process in the middle, on the running platform (see ``faults``).
- ``redrive``: what ``make redrive`` runs: move the dead-letter subscription's
  messages back to the uploads topic (``extractor-reconcile dead-letters``).
- ``reset``: what ``make dev-reset`` runs: delete the data folder.
- ``env``: print the resolved settings (``stack.json`` form) as JSON.

Ports, the data folder and the stack come from the environment (``config``).
Errors are printed as one ``localdev: ...`` message with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from .config import LocalConfig, LocalConfigError


def _start(cfg: LocalConfig, args: argparse.Namespace) -> int:
    from . import stages

    run_id = os.environ.get("LOCALDEV_RUN_ID", "")
    if not run_id:
        raise LocalConfigError("LOCALDEV_RUN_ID is not set: `start` runs inside the Procfile (make dev), not by hand")
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LocalConfigError("start: no command after --")
    timeout = float(os.environ.get("LOCALDEV_WAIT_SECONDS", "300"))
    stages.wait_for(cfg.run_dir, args.after, run_id, timeout)
    env = dict(os.environ)
    if args.service:
        env.update(cfg.service_overrides(args.service))
    sys.stdout.flush()
    os.execvpe(command[0], command, env)
    return 127  # not reached


def _status(cfg: LocalConfig) -> int:
    from .status import main as status_main

    return status_main(cfg)


def _stop(cfg: LocalConfig, timeout: float) -> int:
    import signal
    import time

    from .runner import read_stack_file

    try:
        run = read_stack_file(cfg.data_dir)
    except FileNotFoundError:
        print(f"localdev: no local platform runs on {cfg.data_dir}")
        return 0
    pid = int(run["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"localdev: the platform (pid {pid}) is gone already")
        return 0
    print(f"localdev: SIGTERM sent to the local platform (pid {pid}); waiting for its processes to stop")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("localdev: stopped")
            return 0
        time.sleep(0.2)
    print(f"localdev: the platform (pid {pid}) did not stop within {timeout:g}s", file=sys.stderr)
    return 1


def _redrive(cfg: LocalConfig) -> int:
    import subprocess

    from .runner import read_stack_file

    run = read_stack_file(cfg.data_dir)
    env = cfg.process_env(run["run_id"])
    return subprocess.call([sys.executable, "-m", "extractor.reconcile", "dead-letters"], env=env, cwd=str(cfg.root))


def _tracked(root: Path, folder: Path) -> bool:
    """True when git tracks a file under ``folder`` (False when git or the repository is unavailable)."""
    import subprocess

    try:
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "--", str(folder)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _reset(cfg: LocalConfig) -> int:
    from .runner import PreflightError, data_lock

    if not cfg.data_dir.exists():
        print(f"localdev: nothing to reset ({cfg.data_dir} does not exist)")
        return 0
    data_dir = cfg.data_dir.resolve()
    if cfg.root.is_relative_to(data_dir):
        raise PreflightError(f"refusing to delete {cfg.data_dir}: LOCALDEV_DATA_DIR points at the repository or above")
    if data_dir.is_relative_to(cfg.root) and _tracked(cfg.root, data_dir):
        raise PreflightError(f"refusing to delete {cfg.data_dir}: it holds files tracked by git (LOCALDEV_DATA_DIR "
                             "must be a folder of its own, e.g. the default .local)")
    with data_lock(cfg):  # refuses while make dev runs on this folder
        pass
    shutil.rmtree(cfg.data_dir)
    print(f"localdev: removed {cfg.data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit status."""
    from .bootstrap import BootstrapError
    from .emulator_streams import StreamResetError
    from .ports import PortBusy
    from .runner import PreflightError
    from .stages import STAGES, StageTimeout

    parser = argparse.ArgumentParser(prog="python -m tools.localdev", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="run the whole platform (make dev)")
    up.add_argument("--skip", action="append", default=[], metavar="NAME", help="Procfile process not to start")
    sub.add_parser("bootstrap", help="the one-shot setup process of the Procfile")
    start = sub.add_parser("start", help="Procfile helper: wait for a stage, then exec a command")
    start.add_argument("--after", required=True, choices=STAGES)
    start.add_argument("--service", choices=["files-api", "extractor"])
    start.add_argument("command", nargs=argparse.REMAINDER)
    proc = sub.add_parser("proc", help="run one Procfile process of the running platform")
    proc.add_argument("name")
    demo = sub.add_parser("demo", help="upload the sample files and print what was extracted (make demo)")
    demo.add_argument("--samples", help="folder of print files (default ../shared/samples)")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the extractor")
    sub.add_parser("reset", help="delete the data folder (make dev-reset)")
    sub.add_parser("status", help="processes, readiness and backlog of the running platform (make dev-status)")
    stop = sub.add_parser("stop", help="stop the running platform (make dev-stop)")
    stop.add_argument("--timeout", type=float, default=None, help="seconds to wait (default: the stop timeout + 10)")
    sub.add_parser("redrive", help="re-drive the dead-letter subscription's messages (make redrive)")
    faults = sub.add_parser("faults", help="uploads with kill -9 of one process in the middle (docs/local.md)")
    faults.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("env", help="print the resolved settings as JSON")
    args = parser.parse_args(argv)

    try:
        cfg = LocalConfig.from_env()
        if args.cmd == "up":
            from .runner import up as run_up

            return run_up(cfg, skip=args.skip)
        if args.cmd == "bootstrap":
            from .bootstrap import main as bootstrap_main

            run_id = os.environ.get("LOCALDEV_RUN_ID", "")
            if not run_id:
                raise LocalConfigError("LOCALDEV_RUN_ID is not set: `bootstrap` runs inside the Procfile (make dev)")
            return bootstrap_main(cfg, run_id)
        if args.cmd == "start":
            return _start(cfg, args)
        if args.cmd == "proc":
            from .runner import proc as run_proc

            return run_proc(cfg, args.name)
        if args.cmd == "demo":
            from .demo import main as demo_main

            return demo_main(cfg, samples=args.samples, timeout=args.timeout)
        if args.cmd == "reset":
            return _reset(cfg)
        if args.cmd == "status":
            return _status(cfg)
        if args.cmd == "stop":
            return _stop(cfg, args.timeout if args.timeout is not None else cfg.stop_timeout_seconds + 10)
        if args.cmd == "redrive":
            return _redrive(cfg)
        if args.cmd == "faults":
            from .faults import main as faults_main

            return faults_main(cfg, args.rest)
        print(json.dumps(cfg.describe(), indent=2))
        return 0
    except (LocalConfigError, PortBusy, PreflightError, StageTimeout, BootstrapError, StreamResetError,
            FileNotFoundError) as exc:
        print(f"localdev: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # infra.settings.ConfigError and friends name the key and file
        print(f"localdev: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
