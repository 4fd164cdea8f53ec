"""Settings of the local platform: ports, the data folder, and the dev stack's names.

Everything the local processes need is derived here, once, from three sources:

- the environment (or ``make`` variables, which ``make`` exports): the ports
  (``PORTS``), ``LOCALDEV_DATA_DIR`` (default ``<repo>/.local``),
  ``LOCALDEV_STACK`` (default ``dev``), ``LOG_LEVEL`` (default ``INFO``),
  ``LOG_FORMAT`` (default: ``text`` on a terminal, else ``json``),
  ``LOCALDEV_PG_DURABILITY`` (``full``, the default, or ``fast``: no fsync,
  for tests that say so) and the reconciler overrides of ``RECONCILE_ENV``
  (tests use a short bound);
- ``infra.settings.load_stack_settings(stack)``: the project id, the bucket,
  topic, subscription and database names and the Pub/Sub delivery settings, so
  the emulators hold exactly what the Pulumi program creates for the stack;
- the services' Helm values for the stack (chart defaults, ``environments/common/``,
  ``environments/<stack>/``; ``helm_values``), of which the ones the chart turns
  into environment variables are applied the same way (``service_env``), so a
  local service runs with the stack's knobs.

Nothing else in ``tools.localdev`` reads the environment for these values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.settings import REPO_ROOT, StackSettings, load_stack_settings

#: Every address the local platform binds (loopback only).
LOOPBACK = "127.0.0.1"


class LocalConfigError(ValueError):
    """A local-platform setting is invalid; the message names the variable and the value."""


@dataclass(frozen=True)
class PortSpec:
    """One TCP port of the local platform.

    Attributes:
        var: environment / make variable that sets it (e.g. ``FILES_API_PORT``).
        default: the port when ``var`` is unset.
        owner: what listens there, for messages ("files-api (gunicorn)").
    """

    var: str
    default: int
    owner: str


#: The ports, in start order. Defaults: files-api 8080 (public) and 8082 (ops: /readyz,
#: /metrics) and extractor 8081 as in the images and the chart (docs/seams.md); Pub/Sub
#: 8085 and fake-gcs 4443 are the emulators' own defaults; Postgres 15432 keeps clear
#: of a machine-wide server on 5432.
PORTS: tuple[PortSpec, ...] = (
    PortSpec("PG_PORT", 15432, "PostgreSQL"),
    PortSpec("PUBSUB_PORT", 8085, "the Pub/Sub emulator"),
    PortSpec("GCS_PORT", 4443, "fake-gcs-server"),
    PortSpec("FILES_API_PORT", 8080, "files-api (gunicorn)"),
    PortSpec("FILES_API_OPS_PORT", 8082, "files-api ops listener: /readyz, /metrics (gunicorn)"),
    PortSpec("EXTRACTOR_PORT", 8081, "extractor health/metrics (gunicorn)"),
)

#: Reconciler / sweep settings: ``{variable the processes read: (override variable, StackConfig.reconcile field)}``.
#: The stack's ``print-platform:reconcile`` gives the value; the override (seconds / count) wins.
RECONCILE_ENV = {
    "PENDING_BOUND_SECONDS": ("LOCALDEV_PENDING_BOUND_SECONDS", "pending_bound_seconds"),
    "MAX_REDRIVES": ("LOCALDEV_MAX_REDRIVES", "max_redrives"),
    "RECONCILE_INTERVAL_SECONDS": ("LOCALDEV_RECONCILE_INTERVAL_SECONDS", "interval_seconds"),
    "SWEEP_INTERVAL_SECONDS": ("LOCALDEV_SWEEP_INTERVAL_SECONDS", "sweep_interval_seconds"),
    "UNFINISHED_UPLOAD_AGE_SECONDS": ("LOCALDEV_UNFINISHED_UPLOAD_AGE_SECONDS", "unfinished_upload_age_seconds"),
}
#: ``LOCALDEV_PG_DURABILITY`` values: ``full`` (fsync, synchronous_commit: what Cloud SQL does) or ``fast``.
PG_DURABILITY = ("full", "fast")

#: Services whose Helm values (``environments/<stack>/<service>.yaml``) are applied locally.
SERVICES = ("files-api", "extractor")


def _port(environ: Mapping[str, str], spec: PortSpec) -> int:
    raw = environ.get(spec.var, "").strip()
    if not raw:
        return spec.default
    try:
        value = int(raw)
    except ValueError:
        raise LocalConfigError(f"{spec.var}={raw!r} is not a port number (the port of {spec.owner})") from None
    if not 1 <= value <= 65535:
        raise LocalConfigError(f"{spec.var}={value} is outside 1..65535 (the port of {spec.owner})")
    return value


def service_env(values: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables the chart derives from a service's Helm values (the subset that applies locally).

    Mirrors ``print-service.env`` in ``charts/print-service/templates/_helpers.tpl``:
    ``app.logLevel`` -> ``LOG_LEVEL``; ``app.maxUploadBytes`` (> 0) -> ``MAX_UPLOAD_BYTES``;
    ``app.workers`` (> 0) -> ``WEB_CONCURRENCY``; ``app.maxConcurrentUploads`` (> 0) ->
    ``MAX_CONCURRENT_UPLOADS``; ``shutdown.gracefulTimeoutSeconds`` ->
    ``GUNICORN_CMD_ARGS=--graceful-timeout=N``; ``shutdown.drainTimeoutSeconds`` (> 0)
    -> ``DRAIN_TIMEOUT_SECONDS``; ``app.extraEnv`` as given. The rest of the chart's
    variables are stack outputs the local platform sets itself (``process_env``) or
    cloud-only (IAP audience, ``TMPDIR``). ``tests/e2e/test_localdev_units.py``
    renders the dev chart with ``helm template`` and fails when the two diverge.

    Raises:
        LocalConfigError: ``app``/``shutdown``/``extraEnv`` is not a mapping.
    """
    app = values.get("app") or {}
    shutdown = values.get("shutdown") or {}
    extra = app.get("extraEnv") or {} if isinstance(app, Mapping) else {}
    for name, part in (("app", app), ("shutdown", shutdown), ("app.extraEnv", extra)):
        if not isinstance(part, Mapping):
            raise LocalConfigError(f"Helm values: {name} must be a mapping, got {type(part).__name__}")
    env: dict[str, str] = {}
    if app.get("logLevel"):
        env["LOG_LEVEL"] = str(app["logLevel"])
    if int(app.get("maxUploadBytes") or 0) > 0:
        env["MAX_UPLOAD_BYTES"] = str(int(app["maxUploadBytes"]))
    if int(app.get("workers") or 0) > 0:
        env["WEB_CONCURRENCY"] = str(int(app["workers"]))
    if int(app.get("maxConcurrentUploads") or 0) > 0:
        env["MAX_CONCURRENT_UPLOADS"] = str(int(app["maxConcurrentUploads"]))
    if shutdown.get("gracefulTimeoutSeconds"):
        env["GUNICORN_CMD_ARGS"] = f"--graceful-timeout={int(shutdown['gracefulTimeoutSeconds'])}"
    if int(shutdown.get("drainTimeoutSeconds") or 0) > 0:
        env["DRAIN_TIMEOUT_SECONDS"] = str(shutdown["drainTimeoutSeconds"])
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def helm_values(stack: str, service: str, root: Path | None = None) -> dict[str, Any]:
    """A service's effective Helm values for ``stack``, as Helm sees them before the stack's outputs are added.

    The chart's ``values.yaml`` defaults under ``infra.releases.load_environment_values``
    (``environments/common/<service>.yaml`` under ``environments/<stack>/<service>.yaml``),
    merged with ``infra.releases.deep_merge`` (Helm's rule).

    Raises:
        infra.releases.ReleaseValuesError: a values file is missing or invalid (names the file and key).
        LocalConfigError: the chart's values.yaml is unreadable.
    """
    from infra.releases import CHART_DIR, deep_merge, load_environment_values

    path = CHART_DIR / "values.yaml"
    try:
        defaults = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LocalConfigError(f"{path}: cannot read the chart's default values ({exc})") from None
    return deep_merge(defaults, load_environment_values(stack, service, root))


@dataclass(frozen=True)
class LocalConfig:
    """The resolved local platform.

    Attributes:
        root: repository root (the processes' working directory).
        data_dir: the one folder holding all state (``postgres/``, ``pubsub/``,
            ``gcs/``, ``run/``); survives restarts, ``make dev-reset`` wipes it.
        ports: ``{var: port}`` for every ``PORTS`` entry.
        stack: the :class:`infra.settings.StackSettings` the names come from.
        services: ``{service: env}`` from each service's Helm values (``helm_values`` -> ``service_env``).
        log_level: ``LOG_LEVEL`` for both services (default ``INFO``; ``make dev LOG_LEVEL=DEBUG``).
        log_format: ``LOG_FORMAT`` if given (``json``/``text``), else None: text on a terminal.
        reconcile: ``{RECONCILE_ENV variable: value}`` (stack value or override).
        pg_durability: ``LOCALDEV_PG_DURABILITY`` (``full`` unless a test says ``fast``).
    """

    root: Path
    data_dir: Path
    ports: dict[str, int]
    stack: StackSettings
    services: dict[str, dict[str, str]]
    log_level: str | None = "INFO"
    log_format: str | None = None
    reconcile: dict[str, int] | None = None
    pg_durability: str = "full"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, root: Path | None = None) -> LocalConfig:
        """Resolve the configuration from ``environ`` (default ``os.environ``).

        Raises:
            LocalConfigError: a bad port value, two ports equal, or unreadable chart defaults.
            infra.settings.ConfigError: the stack config is invalid (names the key and file).
            infra.releases.ReleaseValuesError: a service's values file is invalid (names the file and key).
        """
        environ = os.environ if environ is None else environ
        root = (root or REPO_ROOT).resolve()
        ports = {spec.var: _port(environ, spec) for spec in PORTS}
        seen: dict[int, str] = {}
        for var, port in ports.items():
            if port in seen:
                raise LocalConfigError(f"{var} and {seen[port]} are both {port}: every service needs its own port")
            seen[port] = var
        data_raw = environ.get("LOCALDEV_DATA_DIR", "").strip()
        data_dir = Path(data_raw) if data_raw else root / ".local"
        if not data_dir.is_absolute():
            data_dir = root / data_dir
        stack_name = environ.get("LOCALDEV_STACK", "").strip() or "dev"
        stack = load_stack_settings(stack_name, root=root)
        services = {svc: service_env(helm_values(stack_name, svc, root)) for svc in SERVICES}
        log_level = environ.get("LOG_LEVEL", "").strip().upper() or "INFO"
        log_format = environ.get("LOG_FORMAT", "").strip().lower() or None
        if log_format not in (None, "json", "text"):
            raise LocalConfigError(f"LOG_FORMAT={log_format!r}: expected json or text")
        reconcile: dict[str, int] = {}
        for var, (override, field) in RECONCILE_ENV.items():
            raw = environ.get(override, "").strip()
            value = getattr(stack.config.reconcile, field)
            if raw:
                try:
                    value = int(raw)
                except ValueError:
                    raise LocalConfigError(f"{override}={raw!r} is not a whole number") from None
                if value < (0 if var == "MAX_REDRIVES" else 1):
                    raise LocalConfigError(f"{override}={value} is out of range")
            reconcile[var] = value
        durability = environ.get("LOCALDEV_PG_DURABILITY", "").strip().lower() or "full"
        if durability not in PG_DURABILITY:
            raise LocalConfigError(f"LOCALDEV_PG_DURABILITY={durability!r}: expected one of {', '.join(PG_DURABILITY)}")
        return cls(root=root, data_dir=data_dir, ports=ports, stack=stack, services=services, log_level=log_level,
                   log_format=log_format, reconcile=reconcile, pg_durability=durability)

    # -- derived values --------------------------------------------------------------
    @property
    def project(self) -> str:
        """The stack's project id; the emulators accept it as is."""
        return self.stack.project

    @property
    def run_dir(self) -> Path:
        """``<data_dir>/run``: the lock, ``stack.json`` and the bootstrap stage markers."""
        return self.data_dir / "run"

    def backend_dir(self, name: str) -> Path:
        """``<data_dir>/<name>``: a backend's own state (``postgres``, ``pubsub``, ``gcs``)."""
        return self.data_dir / name

    @property
    def database_url(self) -> str:
        """``DATABASE_URL`` of the stack's database on the local server (superuser, trust auth)."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.ports['PG_PORT']}/{self.stack.names.database_name}"

    @property
    def pubsub_host(self) -> str:
        """``PUBSUB_EMULATOR_HOST`` (``host:port``)."""
        return f"{LOOPBACK}:{self.ports['PUBSUB_PORT']}"

    @property
    def storage_host(self) -> str:
        """``STORAGE_EMULATOR_HOST`` (``http://host:port``)."""
        return f"http://{LOOPBACK}:{self.ports['GCS_PORT']}"

    @property
    def files_api_url(self) -> str:
        """Base URL of files-api (``http://127.0.0.1:8080`` by default)."""
        return f"http://{LOOPBACK}:{self.ports['FILES_API_PORT']}"

    @property
    def files_api_ops_url(self) -> str:
        """Base URL of files-api's ops listener (``/readyz``, ``/metrics``; ``http://127.0.0.1:8082`` by default)."""
        return f"http://{LOOPBACK}:{self.ports['FILES_API_OPS_PORT']}"

    @property
    def extractor_url(self) -> str:
        """Base URL of the extractor's health/metrics server."""
        return f"http://{LOOPBACK}:{self.ports['EXTRACTOR_PORT']}"

    @property
    def stop_timeout_seconds(self) -> int:
        """How long a stop may take before processes are killed: the longest gunicorn graceful timeout + 5 s."""
        longest = 30
        for env in self.services.values():
            args = env.get("GUNICORN_CMD_ARGS", "")
            if args.startswith("--graceful-timeout="):
                longest = max(longest, int(args.split("=", 1)[1]))
        return longest + 5

    @property
    def final_bound_seconds(self) -> int:
        """Seconds within which every file answered 201 ends processed or failed (``ReconcileConfig.final_bound_seconds``
        with this run's values)."""
        r = self.reconcile or {}
        return r["PENDING_BOUND_SECONDS"] * (r["MAX_REDRIVES"] + 1) + r["RECONCILE_INTERVAL_SECONDS"]

    def process_env(self, run_id: str, base: Mapping[str, str] | None = None, *, tty: bool = False) -> dict[str, str]:
        """The environment every Procfile process gets (the Procfile picks per-process values from it).

        Holds the service contract variables of docs/seams.md (``DATABASE_URL``,
        ``GOOGLE_CLOUD_PROJECT``, ``UPLOADS_BUCKET``, ``UPLOADS_SUBSCRIPTION``,
        the emulator hosts, ``HOST``), the ports, ``UPLOADS_TOPIC``,
        ``LOCALDEV_DATA_DIR``, ``LOCALDEV_RUN_ID``, the reconciler's settings
        (``RECONCILE_ENV``, ``DEAD_LETTER_SUBSCRIPTION``), ``LOCALDEV_PG_DURABILITY``,
        ``LOG_FORMAT`` (``text`` when ``tty`` and none was asked for), and
        ``PATH`` with this interpreter's bin directory first (so
        ``python``/``gunicorn`` are the project's). A service's own variables (``service_overrides``) are added
        by ``python -m tools.localdev start --service NAME`` just before it execs.
        """
        env = dict(os.environ if base is None else base)
        # Emulator hosts are set explicitly below; a stale one from the caller must not leak.
        for name in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "PORT", "OPS_PORT"):
            env.pop(name, None)
        names = self.stack.names
        env.update({var: str(port) for var, port in self.ports.items()})
        env.update(
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]),
            PYTHONUNBUFFERED="1",
            LOCALDEV_DATA_DIR=str(self.data_dir),
            LOCALDEV_STACK=self.stack.stack,
            LOCALDEV_RUN_ID=run_id,
            HOST=LOOPBACK,
            GOOGLE_CLOUD_PROJECT=self.project,
            PUBSUB_PROJECT_ID=self.project,
            UPLOADS_BUCKET=names.uploads_bucket,
            UPLOADS_TOPIC=names.uploads_topic,
            UPLOADS_SUBSCRIPTION=names.extractor_subscription,
            DEAD_LETTER_SUBSCRIPTION=names.dead_letter_subscription,
            MAX_DELIVERY_ATTEMPTS=str(self.stack.pubsub.max_delivery_attempts),
            LOCALDEV_PG_DURABILITY=self.pg_durability,
            LOG_FORMAT=self.log_format or ("text" if tty else "json"),
            DATABASE_URL=self.database_url,
            PUBSUB_EMULATOR_HOST=self.pubsub_host,
            STORAGE_EMULATOR_HOST=self.storage_host,
        )
        env.update({var: str(value) for var, value in (self.reconcile or {}).items()})
        if self.log_level:
            env["LOG_LEVEL"] = self.log_level
        return env

    def service_overrides(self, service: str) -> dict[str, str]:
        """Variables one service gets on top of ``process_env``: its Helm-derived env, its ``PORT``
        (files-api: and ``OPS_PORT``, as the chart's ``opsPort``), ``LOG_LEVEL``.

        Raises:
            KeyError: ``service`` is not one of ``SERVICES``.
        """
        env = dict(self.services[service])
        env["PORT"] = str(self.ports["FILES_API_PORT" if service == "files-api" else "EXTRACTOR_PORT"])
        if service == "files-api":
            env["OPS_PORT"] = str(self.ports["FILES_API_OPS_PORT"])
        if self.log_level:
            env["LOG_LEVEL"] = self.log_level
        return env

    def describe(self) -> dict[str, Any]:
        """What ``stack.json`` records and ``make demo`` / the e2e test read: URLs, ports, names."""
        names = self.stack.names
        return {
            "stack": self.stack.stack,
            "project": self.project,
            "data_dir": str(self.data_dir),
            "ports": dict(self.ports),
            "files_api_url": self.files_api_url,
            "files_api_ops_url": self.files_api_ops_url,
            "extractor_url": self.extractor_url,
            "database_url": self.database_url,
            "pubsub_emulator_host": self.pubsub_host,
            "storage_emulator_host": self.storage_host,
            "uploads_bucket": names.uploads_bucket,
            "uploads_topic": names.uploads_topic,
            "extractor_subscription": names.extractor_subscription,
            "dead_letter_topic": names.dead_letter_topic,
            "dead_letter_subscription": names.dead_letter_subscription,
            "reconcile": dict(self.reconcile or {}),
            "final_bound_seconds": self.final_bound_seconds,
            "pg_durability": self.pg_durability,
        }
