"""Bootstrap stages: how the Procfile processes wait for the one-shot setup.

The ``bootstrap`` process marks each stage it completes by writing
``<data_dir>/run/<stage>.ready`` holding the run id (``LOCALDEV_RUN_ID``, a
fresh UUID per ``make dev``), so a marker left by an earlier run never
counts. Processes that depend on a stage start through
``python -m tools.localdev start --after <stage> -- CMD``, which polls for the
marker and then ``exec``\\ s ``CMD`` (so the supervisor's signals reach the
server itself).

Stages, in order:

- ``pubsub``: the topics and subscriptions exist (fake-gcs-server needs its
  notification topic before it starts);
- ``services``: migrations applied and the uploads bucket exists (files-api
  and the extractor start);
- ``ready``: both services answer ``/readyz`` (``make demo`` and the e2e
  test wait on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

STAGES = ("pubsub", "services", "ready")


class StageTimeout(TimeoutError):
    """A stage was not reached in time; the message names it and where the marker was expected."""


def _marker(run_dir: Path, stage: str) -> Path:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    return run_dir / f"{stage}.ready"


def mark(run_dir: Path, stage: str, run_id: str) -> None:
    """Record that ``stage`` is complete for run ``run_id`` (atomic rename)."""
    path = _marker(run_dir, stage)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(run_id)
    tmp.replace(path)


def reached(run_dir: Path, stage: str, run_id: str) -> bool:
    """True when ``stage`` was marked by run ``run_id``."""
    try:
        return _marker(run_dir, stage).read_text().strip() == run_id
    except FileNotFoundError:
        return False


def clear(run_dir: Path) -> None:
    """Remove every stage marker (the runner does this before a new run)."""
    for stage in STAGES:
        _marker(run_dir, stage).unlink(missing_ok=True)


def wait_for(run_dir: Path, stage: str, run_id: str, timeout: float, *,
             interval: float = 0.2, alive: Callable[[], bool] | None = None) -> None:
    """Block until ``stage`` is marked by ``run_id``.

    Args:
        timeout: seconds to wait at most.
        alive: optional check called each poll; when it returns False the wait
            stops early with ``StageTimeout`` (e.g. the platform exited).

    Raises:
        StageTimeout: not reached within ``timeout`` seconds (or ``alive`` said no).
    """
    deadline = time.monotonic() + timeout
    while not reached(run_dir, stage, run_id):
        if alive is not None and not alive():
            raise StageTimeout(f"the local platform stopped before stage {stage!r} was reached")
        if time.monotonic() > deadline:
            raise StageTimeout(
                f"bootstrap stage {stage!r} not reached within {timeout:g}s "
                f"(no {_marker(run_dir, stage)} for run {run_id}); see the bootstrap process's log lines"
            )
        time.sleep(interval)
