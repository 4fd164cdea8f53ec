"""Unit tests of ``tools.localdev`` (no server started): settings, ports, stages, Procfile, lock, demo table."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.settings import load_stack_settings
from tools.localdev import stages
from tools.localdev.bootstrap import dead_letter_subscription_body, subscription_body
from tools.localdev.client import ApiError, Upload
from tools.localdev.config import PORTS, LocalConfig, LocalConfigError, helm_values, service_env
from tools.localdev.demo import facts, table
from tools.localdev.ports import PortBusy, check_ports_free, port_is_free
from tools.localdev.runner import PROCFILE, PreflightError, data_lock, procfile_commands

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, **env: str) -> LocalConfig:
    return LocalConfig.from_env({"LOCALDEV_DATA_DIR": str(tmp_path / "data"), **env})


# -- names and settings: from infra.settings and environments/, never copied ------------------


def test_names_come_from_the_dev_stack_settings(tmp_path: Path) -> None:
    stack = load_stack_settings("dev")
    env = _cfg(tmp_path).process_env("run-1", base={})
    assert env["GOOGLE_CLOUD_PROJECT"] == stack.project
    assert env["UPLOADS_BUCKET"] == stack.names.uploads_bucket
    assert env["UPLOADS_TOPIC"] == stack.names.uploads_topic
    assert env["UPLOADS_SUBSCRIPTION"] == stack.names.extractor_subscription
    assert env["DATABASE_URL"].endswith(f"/{stack.names.database_name}")
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://postgres@127.0.0.1:")


def _copy_stack(root: Path, **pubsub: object) -> Path:
    """A repo root with the dev stack files, the stack's Pub/Sub keys changed as given."""
    root.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "environments", root / "environments")
    stack_file = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    stack_file["config"]["print-platform:pubsub"].update(pubsub)
    (root / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack_file))
    return root


def test_a_changed_stack_file_changes_the_emulator_subscription(tmp_path: Path) -> None:
    """The subscription follows Pulumi.dev.yaml: change it there and the local platform follows."""
    root = _copy_stack(tmp_path / "repo", ackDeadlineSeconds=123, maxDeliveryAttempts=7, minimumBackoff="11s")
    cfg = LocalConfig.from_env({"LOCALDEV_DATA_DIR": str(tmp_path / "d")}, root=root)
    body = subscription_body(cfg)
    assert body["ack_deadline_seconds"] == 123
    assert body["dead_letter_policy"] == {
        "deadLetterTopic": f"projects/{cfg.project}/topics/{cfg.stack.names.dead_letter_topic}",
        "maxDeliveryAttempts": 7,
    }
    assert body["retry_policy"]["minimumBackoff"] == "11s"


def test_subscription_body_is_the_dev_stack_pubsub_settings(tmp_path: Path) -> None:
    ps = load_stack_settings("dev").pubsub
    body = subscription_body(_cfg(tmp_path))
    assert body["ack_deadline_seconds"] == ps.ack_deadline_seconds
    assert body["message_retention_duration"] == ps.message_retention_duration
    assert body["dead_letter_policy"]["maxDeliveryAttempts"] == ps.max_delivery_attempts
    assert body["retry_policy"] == {"minimumBackoff": ps.minimum_backoff, "maximumBackoff": ps.maximum_backoff}


@pytest.mark.slow
def test_emulator_topics_and_subscriptions_are_what_the_program_previews_for_dev(tmp_path: Path) -> None:
    """The bodies bootstrap sends to the emulator equal the Pulumi program's inputs (offline preview of dev)."""
    import json

    from tools.devstack.pubsub import _camel

    proc = subprocess.run([sys.executable, "-m", "tools.preview", "--stack", "dev", "--format", "json"],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    resources = json.loads(proc.stdout)["resources"]
    kinds = ("gcp:pubsub/topic:Topic", "gcp:pubsub/subscription:Subscription")
    inputs = {r["inputs"]["name"]: r["inputs"] for r in resources if r["type"] in kinds}
    cfg = _cfg(tmp_path)
    names = cfg.stack.names
    assert {names.uploads_topic, names.dead_letter_topic} <= set(inputs)
    for name, body, topic in ((names.extractor_subscription, subscription_body(cfg), names.uploads_topic),
                              (names.dead_letter_subscription, dead_letter_subscription_body(), names.dead_letter_topic)):
        program = inputs[name]
        assert program["topic"] == f"projects/{cfg.project}/topics/{topic}"
        for key, value in body.items():
            assert program[_camel(key)] == value, f"{name}: {key} is {value!r} locally, {program[_camel(key)]!r} in the program"


#: Chart variables the local platform sets itself from the stack's names and its own ports
#: (``LocalConfig.process_env`` / ``service_overrides``), and ones that only apply in the cloud.
LOCAL_FROM_STACK = {"PORT", "OPS_PORT", "GOOGLE_CLOUD_PROJECT", "UPLOADS_BUCKET", "UPLOADS_SUBSCRIPTION", "UPLOADS_TOPIC",
                    "MAX_DELIVERY_ATTEMPTS", "DATABASE_URL"}
CLOUD_ONLY = {"IAP_AUDIENCE", "TMPDIR"}


def _rendered_container_env(service: str) -> dict[str, str]:
    """The app container's env of ``service``'s Deployment, rendered by the real ``helm template`` for dev."""
    from tools import install_helm, render

    try:
        helm = install_helm.helm_path()
    except install_helm.InstallError:
        install_helm.install()
        helm = install_helm.TARGET
    specs, _ = render.releases_from_settings("dev", placeholder_digest=render.PLACEHOLDER_DIGEST)
    (spec,) = [s for s in specs if s.name == service]
    docs = [d for d in yaml.safe_load_all(render.helm_template(spec, helm)) if d and d.get("kind") == "Deployment"]
    (deployment,) = docs
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] != "cloud-sql-proxy"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.mark.slow
@pytest.mark.parametrize("service", ["files-api", "extractor"])
def test_service_env_is_what_the_dev_chart_renders(tmp_path: Path, service: str) -> None:
    """Drift guard: ``service_env`` mirrors the chart's env template; a chart change must not diverge silently.

    Every variable of the rendered Deployment is either produced by ``service_env`` with
    the same value, or set by the local platform from the stack (same value where it is
    a name), or cloud-only.
    """
    chart_env = _rendered_container_env(service)
    cfg = _cfg(tmp_path)
    local = cfg.service_overrides(service)
    unexplained = set(chart_env) - set(cfg.services[service]) - LOCAL_FROM_STACK - CLOUD_ONLY
    assert not unexplained, f"{service}: chart variables service_env does not mirror: {sorted(unexplained)}"
    for name, value in cfg.services[service].items():
        assert chart_env.get(name) == value, f"{service}: {name} is {value!r} locally, {chart_env.get(name)!r} in the chart"
    process = cfg.process_env("run-1", base={})
    for name in ("GOOGLE_CLOUD_PROJECT", "UPLOADS_BUCKET", "UPLOADS_SUBSCRIPTION", "UPLOADS_TOPIC",
                 "MAX_DELIVERY_ATTEMPTS"):
        if name in chart_env:
            assert process[name] == chart_env[name], f"{service}: {name} differs from the stack's"
    assert local["PORT"] == chart_env["PORT"]  # default ports are the images' ports
    # files-api's cluster-only listener: the same default port locally as in the chart; none for the extractor.
    assert local.get("OPS_PORT") == chart_env.get("OPS_PORT")
    assert ("OPS_PORT" in chart_env) is (service == "files-api")
    if "DATABASE_URL" in chart_env:
        assert process["DATABASE_URL"].rsplit("/", 1)[1] == chart_env["DATABASE_URL"].rsplit("/", 1)[1]


def test_service_overrides_add_port_and_log_level(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert "DRAIN_TIMEOUT_SECONDS" in cfg.service_overrides("extractor"), "the extractor drains on SIGTERM"
    assert cfg.service_overrides("files-api")["PORT"] == "8080"
    assert cfg.service_overrides("files-api")["OPS_PORT"] == "8082"
    assert "OPS_PORT" not in cfg.service_overrides("extractor")
    assert cfg.service_overrides("extractor")["PORT"] == "8081"
    assert _cfg(tmp_path, LOG_LEVEL="info").service_overrides("extractor")["LOG_LEVEL"] == "INFO"


def test_helm_values_layer_chart_defaults_common_and_stack_files() -> None:
    chart = yaml.safe_load((REPO_ROOT / "charts" / "print-service" / "values.yaml").read_text())
    stack_file = yaml.safe_load((REPO_ROOT / "environments" / "dev" / "files-api.yaml").read_text())
    values = helm_values("dev", "files-api")
    assert values["app"]["logLevel"] == stack_file["app"]["logLevel"]  # the stack's file wins
    assert set(chart) <= set(values)  # chart defaults fill the rest


def test_service_env_rejects_malformed_values() -> None:
    with pytest.raises(LocalConfigError, match="app must be a mapping"):
        service_env({"app": ["logLevel"]})
    assert service_env({"app": {"maxUploadBytes": 0}, "shutdown": {"drainTimeoutSeconds": 0}}) == {}


def test_stop_timeout_covers_the_longest_graceful_shutdown(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    longest = max(int(env["GUNICORN_CMD_ARGS"].split("=")[1]) for env in cfg.services.values())
    assert cfg.stop_timeout_seconds > longest


# -- ports --------------------------------------------------------------------------------------


def test_default_ports_and_files_api_on_8080(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert cfg.ports == {spec.var: spec.default for spec in PORTS}
    assert cfg.files_api_url == "http://127.0.0.1:8080"
    assert cfg.files_api_ops_url == "http://127.0.0.1:8082"
    assert cfg.describe()["files_api_ops_url"] == cfg.files_api_ops_url


@pytest.mark.parametrize(("value", "phrase"), [("http", "is not a port number"), ("70000", "outside 1..65535"),
                                                ("0", "outside 1..65535")])
def test_bad_port_value_names_the_variable(tmp_path: Path, value: str, phrase: str) -> None:
    with pytest.raises(LocalConfigError, match=f"GCS_PORT={value!r}|GCS_PORT={value}") as err:
        _cfg(tmp_path, GCS_PORT=value)
    assert phrase in str(err.value) and "fake-gcs-server" in str(err.value)


def test_two_services_on_one_port_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LocalConfigError, match="EXTRACTOR_PORT and FILES_API_PORT are both 9000"):
        _cfg(tmp_path, FILES_API_PORT="9000", EXTRACTOR_PORT="9000")


@pytest.fixture
def busy_port():
    """A port with a listener on 127.0.0.1 for the duration of the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_busy_port_error_names_port_variable_and_owner(busy_port: int) -> None:
    assert not port_is_free(busy_port)
    with pytest.raises(PortBusy) as err:
        check_ports_free({"FILES_API_PORT": busy_port, "PG_PORT": 1})
    message = str(err.value)
    assert f"port {busy_port} (FILES_API_PORT) is already in use on 127.0.0.1; files-api (gunicorn) wanted it" in message
    assert "make dev FILES_API_PORT=" in message
    assert err.value.busy["FILES_API_PORT"] == busy_port


def test_make_dev_with_a_busy_port_stops_before_starting_anything(tmp_path: Path, busy_port: int) -> None:
    env = {**os.environ, "LOCALDEV_DATA_DIR": str(tmp_path / "data"), "PUBSUB_PORT": str(busy_port)}
    proc = subprocess.run([sys.executable, "-m", "tools.localdev", "up"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"port {busy_port} (PUBSUB_PORT) is already in use" in proc.stderr
    assert "the Pub/Sub emulator wanted it" in proc.stderr
    assert not (tmp_path / "data").exists(), "nothing may be created before the checks pass"


# -- stages ---------------------------------------------------------------------------------------


def test_stage_markers_belong_to_one_run(tmp_path: Path) -> None:
    stages.mark(tmp_path, "pubsub", "run-a")
    assert stages.reached(tmp_path, "pubsub", "run-a")
    assert not stages.reached(tmp_path, "pubsub", "run-b"), "a marker of an earlier run must not count"
    assert not stages.reached(tmp_path, "services", "run-a")
    stages.clear(tmp_path)
    assert not stages.reached(tmp_path, "pubsub", "run-a")
    with pytest.raises(ValueError, match="unknown stage 'bogus'"):
        stages.mark(tmp_path, "bogus", "run-a")


def test_waiting_for_a_stage_times_out_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(stages.StageTimeout, match="stage 'services' not reached within 0.3s"):
        stages.wait_for(tmp_path, "services", "run-a", 0.3, interval=0.05)
    with pytest.raises(stages.StageTimeout, match="stopped before stage 'ready'"):
        stages.wait_for(tmp_path, "ready", "run-a", 30, alive=lambda: False)


# -- the Procfile -----------------------------------------------------------------------------------


def test_procfile_runs_the_backends_bootstrap_and_both_services() -> None:
    commands = procfile_commands()
    assert list(commands) == ["postgres", "pubsub", "bootstrap", "gcs", "files-api", "extractor", "reconciler", "sweep"]
    for name, command in commands.items():
        assert command.lstrip().startswith(("exec ", "CLOUD_PUBSUB_EMULATOR_OPTS=")), name
        assert " exec " in f" {command}", f"{name}: the shell must exec the server so honcho's signals reach it"
    assert "start --after pubsub" in commands["gcs"], "fake-gcs-server needs its notification topic first"
    for service in ("files-api", "extractor"):
        assert f"start --after services --service {service} -- gunicorn" in commands[service]
    assert "start --after services -- extractor-reconcile pending --every" in commands["reconciler"]
    assert "start --after services -- files-api-sweep --every" in commands["sweep"]
    assert '--durability "$LOCALDEV_PG_DURABILITY"' in commands["postgres"]


def test_services_use_the_images_gunicorn_config_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {"DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/db", "GOOGLE_CLOUD_PROJECT": "p",
                       "UPLOADS_BUCKET": "bucket", "UPLOADS_SUBSCRIPTION": "sub", "LOG_FORMAT": "json"}.items():
        monkeypatch.setenv(var, value)  # the configs validate the environment when imported
    commands = procfile_commands()
    assert "gunicorn -c apps/files-api/gunicorn.conf.py" in commands["files-api"]
    assert (REPO_ROOT / "apps" / "files-api" / "gunicorn.conf.py").is_file()
    assert "gunicorn -c python:tools.localdev.extractor_gunicorn" in commands["extractor"]
    import tools.localdev.extractor_gunicorn as local_conf
    from extractor import gunicorn_conf as image_conf

    # the image's config, unchanged, plus only the post_fork hook (emulator workaround)
    for name in ("wsgi_app", "workers", "worker_class", "threads", "timeout", "graceful_timeout", "logconfig_dict",
                 "on_starting", "post_worker_init", "worker_int", "worker_exit"):
        assert getattr(local_conf, name) == getattr(image_conf, name), name
    assert not hasattr(image_conf, "post_fork") and callable(local_conf.post_fork)
    # the extractor's config binds 0.0.0.0 (the pod); locally it is pinned to loopback
    assert '--bind "$HOST:$EXTRACTOR_PORT"' in commands["extractor"]


def test_procfile_parses_with_honcho_and_names_no_unknown_variable(tmp_path: Path) -> None:
    import re

    env = _cfg(tmp_path).process_env("run-1", base={"PATH": "/usr/bin"})
    for name, command in procfile_commands().items():
        for var in re.findall(r"\$\{?([A-Z_]+)", command):
            assert var in env or var == "PWD", f"{name} uses ${var}, which the runner does not set"
    assert PROCFILE.parent.name == "localdev"


# -- data folder ----------------------------------------------------------------------------------


def test_one_platform_per_data_folder(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with data_lock(cfg):
        with pytest.raises(PreflightError, match=rf"another local platform \(pid {os.getpid()}\) already uses"):
            with data_lock(cfg):
                pass
    with data_lock(cfg):  # released again
        pass


def test_reset_removes_the_data_folder_but_not_while_running(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    (cfg.data_dir / "postgres").mkdir(parents=True)
    env = {**os.environ, "LOCALDEV_DATA_DIR": str(cfg.data_dir)}
    with data_lock(cfg):
        proc = subprocess.run([sys.executable, "-m", "tools.localdev", "reset"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "already uses" in proc.stderr
        assert cfg.data_dir.exists()
    proc = subprocess.run([sys.executable, "-m", "tools.localdev", "reset"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not cfg.data_dir.exists()


def test_reset_refuses_the_repository_itself() -> None:
    env = {**os.environ, "LOCALDEV_DATA_DIR": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tools.localdev", "reset"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "refusing to delete" in proc.stderr
    assert (REPO_ROOT / "Makefile").exists()
    assert not (REPO_ROOT / "run").exists(), "nothing may be written into the repository"


def test_reset_refuses_a_folder_of_the_repository() -> None:
    env = {**os.environ, "LOCALDEV_DATA_DIR": "docs"}
    proc = subprocess.run([sys.executable, "-m", "tools.localdev", "reset"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "tracked by git" in proc.stderr
    assert (REPO_ROOT / "docs" / "local.md").exists()
    assert not (REPO_ROOT / "docs" / "run").exists(), "nothing may be written into the repository"


# -- the demo's table ----------------------------------------------------------------------------------


def test_demo_table_shows_facts_reasons_and_rejections() -> None:
    processed = {"id": "a", "status": "processed", "error": None, "metadata": {
        "format": "gcode", "producer": {"name": "PrusaSlicer", "version": "2.5.0"}, "print_time_s": 632.0,
        "layer_count": 31, "layer_height_mm": 0.2, "filament_used_mm": 1500.0}}
    failed = {"id": "b", "status": "failed", "metadata": None, "error": "'x.3mf': no 3D model part"}
    uploads = [Upload("p/a.gcode", file=processed), Upload("b/x.3mf", file=failed),
               Upload("b/empty.gcode", rejected=ApiError("upload", 400, "the file 'empty.gcode' is empty"))]
    text = table(uploads, {"a": processed, "b": failed})
    assert "PrusaSlicer 2.5.0" in text and "10m32s, 31 layers, layer 0.2 mm, filament 1.5 m" in text
    assert "no 3D model part" in text
    assert "rejected (400)" in text and "is empty" in text
    assert facts({"triangle_count": 12, "object_count": 1, "unit": "millimeter"}) == "12 triangles, 1 objects, millimeter"


# -- proc: one process of a running platform ----------------------------------------------------------


def test_proc_needs_a_running_platform_with_the_same_ports(tmp_path: Path) -> None:
    import json

    from tools.localdev.runner import proc_command

    cfg = _cfg(tmp_path)
    with pytest.raises(FileNotFoundError, match="no running local platform found"):
        proc_command(cfg, "extractor")
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "stack.json").write_text(json.dumps({**cfg.describe(), "run_id": "abc"}))
    command, env = proc_command(cfg, "extractor")
    assert command == procfile_commands()["extractor"]
    assert env["LOCALDEV_RUN_ID"] == "abc"
    with pytest.raises(PreflightError, match="no process 'worker'"):
        proc_command(cfg, "worker")
    other = _cfg(tmp_path, EXTRACTOR_PORT="18081")
    with pytest.raises(PreflightError, match="set the same port variables"):
        proc_command(other, "extractor")


def test_start_outside_the_procfile_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOCALDEV_RUN_ID"}
    env["LOCALDEV_DATA_DIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tools.localdev", "start", "--after", "ready", "--", "true"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "LOCALDEV_RUN_ID is not set" in proc.stderr


# -- bootstrap: messages --------------------------------------------------------------------------------


def test_bootstrap_names_the_backend_that_never_answered(tmp_path: Path) -> None:
    from tools.devstack import free_port
    from tools.localdev.bootstrap import Bootstrap, BootstrapError

    cfg = _cfg(tmp_path, PG_PORT=str(free_port()), PUBSUB_PORT=str(free_port()))
    boot = Bootstrap(cfg, "run-1", timeout=0.5)
    with pytest.raises(BootstrapError, match=f"PostgreSQL on port {cfg.ports['PG_PORT']} did not answer within 0.5s"):
        boot.database()
    with pytest.raises(BootstrapError, match=f"Pub/Sub emulator on port {cfg.ports['PUBSUB_PORT']} did not answer"):
        boot.topics()
    assert not stages.reached(cfg.run_dir, "pubsub", "run-1")


def test_banner_lists_the_urls_of_this_run(tmp_path: Path) -> None:
    from tools.localdev.bootstrap import banner

    cfg = _cfg(tmp_path, FILES_API_PORT="18080", FILES_API_OPS_PORT="18082")
    text = banner(cfg)
    assert "http://127.0.0.1:18080/" in text and "http://127.0.0.1:18080/docs" in text
    assert "http://127.0.0.1:18082/readyz" in text and "http://127.0.0.1:18082/metrics" in text
    assert cfg.stack.names.extractor_subscription in text and str(cfg.data_dir) in text


def test_missing_backend_programs_are_listed_with_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.devstack.pubsub as pubsub_module
    import tools.localdev.runner as runner_module
    from tools.localdev.runner import check_programs

    monkeypatch.setattr(pubsub_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(runner_module.shutil, "which", lambda name: None)
    with pytest.raises(PreflightError) as err:
        check_programs()
    message = str(err.value)
    assert "gcloud not found on PATH" in message and "pubsub-emulator" in message
    assert "java not found on PATH" in message and "Java 17+" in message


# -- supervisor: restart policy ---------------------------------------------------------------------------


def _supervise(tmp_path: Path, processes: dict[str, str], *, stop_after: float | None, **kwargs):
    import io
    import signal as _signal
    import threading

    from honcho.printer import Printer

    from tools.localdev.supervisor import Supervisor

    out = io.StringIO()
    sup = Supervisor(Printer(out, colour=False), stop_timeout=5, state_file=tmp_path / "processes.json", **kwargs)
    for name, cmd in processes.items():
        sup.add_process(name, cmd, env=dict(os.environ), cwd=str(tmp_path))
    saved = {sig: _signal.getsignal(sig) for sig in (_signal.SIGINT, _signal.SIGTERM)}
    timer = threading.Timer(stop_after, sup.terminate) if stop_after else None
    if timer:
        timer.start()
    try:
        code = sup.loop()
    finally:
        if timer:
            timer.cancel()
        for sig, handler in saved.items():
            _signal.signal(sig, handler)
    import json

    return code, out.getvalue(), json.loads((tmp_path / "processes.json").read_text())


def test_supervisor_restarts_what_exits_and_keeps_the_rest(tmp_path: Path) -> None:
    code, out, state = _supervise(tmp_path, {"flaky": "echo ran >> runs.txt; exit 3", "steady": "exec sleep 30"},
                                  stop_after=4.0)
    runs = (tmp_path / "runs.txt").read_text().count("ran")
    assert runs >= 3, out  # 1 s, then 2 s back-off: started again, twice at least, in 4 s
    assert "flaky exited; restarting it in 1s (restart #1)" in out and "restarting it in 2s" in out
    assert state["flaky"]["restarts"] == runs - 1 and state["flaky"]["last_exit"] in (3, -15)
    assert state["steady"]["restarts"] == 0, "one process exiting does not stop the others"
    assert all(s["state"] == "stopped" for s in state.values())
    assert code == 0


def test_supervisor_stops_everything_when_bootstrap_fails(tmp_path: Path) -> None:
    code, out, state = _supervise(tmp_path, {"bootstrap": "sleep 0.5; exit 1", "server": "exec sleep 30"},
                                  stop_after=None, fatal=("bootstrap",))
    assert code == 1
    assert "bootstrap failed: stopping the platform" in out
    assert state["server"]["state"] == "stopped" and state["bootstrap"]["restarts"] == 0


def test_supervisor_restarts_a_service_whose_liveness_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.localdev.supervisor as supervisor
    from tools.devstack import free_port

    monkeypatch.setattr(supervisor, "LIVENESS_PERIOD_SECONDS", 0.2)
    port = free_port()
    # 200 for the first two checks, then 503: what the extractor does once its streaming pull died.
    server = (
        "import http.server, itertools\n"
        "n = itertools.count()\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if next(n) < 2 else 503); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    (tmp_path / "server.py").write_text(server)
    code, out, state = _supervise(tmp_path, {"svc": f"exec {sys.executable} server.py"}, stop_after=5.0,
                                  liveness={"svc": f"http://127.0.0.1:{port}/healthz"})
    assert "svc: liveness" in out and "failed 3 times; restarting it" in out, out
    assert state["svc"]["restarts"] >= 1


# -- reconcile settings, log format, status -----------------------------------------------------------------


def test_reconcile_settings_come_from_the_stack_and_tests_may_shorten_them(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    stack = cfg.stack.config.reconcile
    assert cfg.reconcile == {"PENDING_BOUND_SECONDS": stack.pending_bound_seconds, "MAX_REDRIVES": stack.max_redrives,
                             "RECONCILE_INTERVAL_SECONDS": stack.interval_seconds,
                             "SWEEP_INTERVAL_SECONDS": stack.sweep_interval_seconds,
                             "UNFINISHED_UPLOAD_AGE_SECONDS": stack.unfinished_upload_age_seconds}
    assert cfg.final_bound_seconds == stack.final_bound_seconds <= 300, "make dev's bound is at most 5 minutes"
    env = cfg.process_env("run-1", base={})
    assert env["PENDING_BOUND_SECONDS"] == str(stack.pending_bound_seconds)
    assert env["DEAD_LETTER_SUBSCRIPTION"] == cfg.stack.names.dead_letter_subscription
    short = _cfg(tmp_path, LOCALDEV_PENDING_BOUND_SECONDS="5", LOCALDEV_MAX_REDRIVES="0")
    assert short.final_bound_seconds == 5 + stack.interval_seconds
    with pytest.raises(LocalConfigError, match="LOCALDEV_MAX_REDRIVES='x' is not a whole number"):
        _cfg(tmp_path, LOCALDEV_MAX_REDRIVES="x")


def test_make_dev_keeps_data_durable_unless_a_test_says_fast(tmp_path: Path) -> None:
    assert _cfg(tmp_path).pg_durability == "full"
    assert _cfg(tmp_path).process_env("r", base={})["LOCALDEV_PG_DURABILITY"] == "full"
    assert _cfg(tmp_path, LOCALDEV_PG_DURABILITY="fast").pg_durability == "fast"
    with pytest.raises(LocalConfigError, match="LOCALDEV_PG_DURABILITY='off'"):
        _cfg(tmp_path, LOCALDEV_PG_DURABILITY="off")
    from tools.devstack.postgres import PostgresServer

    durable = PostgresServer(data_dir=tmp_path / "pg", port=1, durable=True).command()
    assert "fsync=on" in durable and "synchronous_commit=on" in durable and "full_page_writes=on" in durable


def test_logs_are_text_at_info_on_a_terminal_json_when_asked(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert cfg.log_level == "INFO"
    assert cfg.process_env("r", base={}, tty=True)["LOG_FORMAT"] == "text"
    assert cfg.process_env("r", base={}, tty=False)["LOG_FORMAT"] == "json"
    assert _cfg(tmp_path, LOG_FORMAT="json").process_env("r", base={}, tty=True)["LOG_FORMAT"] == "json"
    assert _cfg(tmp_path, LOG_LEVEL="debug").service_overrides("extractor")["LOG_LEVEL"] == "DEBUG"
    with pytest.raises(LocalConfigError, match="LOG_FORMAT='xml'"):
        _cfg(tmp_path, LOG_FORMAT="xml")


def test_status_and_stop_without_a_running_platform(tmp_path: Path) -> None:
    env = {**os.environ, "LOCALDEV_DATA_DIR": str(tmp_path / "none")}
    status = subprocess.run([sys.executable, "-m", "tools.localdev", "status"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 3 and "no local platform runs" in status.stdout
    stop = subprocess.run([sys.executable, "-m", "tools.localdev", "stop"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0 and "no local platform runs" in stop.stdout


def test_status_reads_the_backlog_gauges() -> None:
    from tools.localdev.status import backlog

    text = ('# HELP x\npipeline_pending_files{older_than_seconds="0"} 4.0\n'
            'pipeline_pending_files{older_than_seconds="60"} 1.0\npipeline_pending_oldest_age_seconds 75.5\n')
    assert backlog(text) == {'pipeline_pending_files{older_than_seconds="0"}': 4.0,
                             "pipeline_pending_oldest_age_seconds": 75.5}
