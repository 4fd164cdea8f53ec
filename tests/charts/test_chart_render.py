"""What each rendered release contains: the issue's list, checked object by object.

Rendered with the real pinned helm from the values infra/releases.py computes
for each stack (conftest.py); marked slow because they run an external binary.
"""
from __future__ import annotations

import re
import shutil

import pytest

from infra import releases
from tools import render

from chart_support import ROOT, STACKS, render_stack

pytestmark = pytest.mark.slow

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def pod_spec(release, kind="Deployment"):
    return release.one(kind)["spec"]["template"]["spec"]


def app_container(release):
    return pod_spec(release)["containers"][0]


def env_of(container) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_every_release_renders_the_common_objects(release):
    kinds = release.kinds()
    for kind in ("Deployment", "ServiceAccount", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "NetworkPolicy", "PodMonitoring"):
        assert kind in kinds, f"{release.stack}/{release.service}: no {kind}"
    for obj in release.objects:
        assert obj["metadata"]["namespace"] == release.namespace, obj["metadata"]
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == release.service
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert {"app.kubernetes.io/name", "app.kubernetes.io/part-of", "helm.sh/chart"} <= set(labels)


def test_probes_resources_and_image_by_digest(release):
    c = app_container(release)
    # files-api: the probes on the cluster-only ops listener; the extractor's only port is internal anyway.
    probe_port = {"files-api": "ops", "extractor": "http"}[release.service]
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": probe_port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": probe_port}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": probe_port}
    for bound in ("requests", "limits"):
        assert set(c["resources"][bound]) == {"cpu", "memory", "ephemeral-storage"}
    assert c["image"] == f"{release.values['image']['repository']}@{release.values['image']['digest']}"
    assert DIGEST.search(c["image"])
    port = {"files-api": 8080, "extractor": 8081}[release.service]
    expected = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    if release.service == "files-api":
        expected.append({"name": "ops", "containerPort": 8082, "protocol": "TCP"})
        assert env_of(c)["OPS_PORT"] == "8082"
    else:
        assert "OPS_PORT" not in env_of(c)
    assert c["ports"] == expected
    assert env_of(c)["PORT"] == str(port)


def test_pod_and_container_security(release):
    spec = pod_spec(release)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    containers = spec["containers"] + spec.get("initContainers", [])
    for c in containers:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
    tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
    assert tmp and "emptyDir" in tmp[0]


def test_pods_run_as_the_images_own_user(release):
    """The chart's UID/GID is the service image's numeric USER (one fact, two files)."""
    dockerfile = (ROOT / "apps" / release.service / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER\s+(\d+):(\d+)\s*$", dockerfile, re.MULTILINE)
    uid, gid = int(user[0]), int(user[1])
    spec = pod_spec(release)
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (uid, gid)
    assert spec["securityContext"]["fsGroup"] == gid
    for c in spec["containers"] + spec.get("initContainers", []):
        assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (uid, gid), c["name"]
    assert {"name": "tmp", "mountPath": "/tmp"} in spec["containers"][0]["volumeMounts"]


def test_grace_period_outlasts_gunicorn_and_the_drain(release):
    spec = pod_spec(release)
    shutdown = release.values["shutdown"]
    env = env_of(spec["containers"][0])
    graceful = int(env["GUNICORN_CMD_ARGS"].split("=")[1])
    assert graceful == shutdown["gracefulTimeoutSeconds"] == 30
    grace = spec["terminationGracePeriodSeconds"]
    pre_stop = spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert grace > pre_stop + graceful
    assert 45 <= grace <= 60
    if release.service == "extractor":
        drain = int(env["DRAIN_TIMEOUT_SECONDS"])
        assert drain == 25 and drain < graceful < grace
    else:
        assert "DRAIN_TIMEOUT_SECONDS" not in env
        assert pre_stop == 5, "files-api waits for the load balancer to deregister it"


def test_topology_spread_across_zones(release):
    spread = pod_spec(release)["topologySpreadConstraints"]
    zones = [s for s in spread if s["topologyKey"] == "topology.kubernetes.io/zone"]
    assert len(zones) == 1 and zones[0]["maxSkew"] == 1
    expected = "DoNotSchedule" if release.stack == "prod" else "ScheduleAnyway"
    assert zones[0]["whenUnsatisfiable"] == expected
    selector = release.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert zones[0]["labelSelector"]["matchLabels"] == selector


def test_service_account_is_annotated_for_workload_identity(release):
    sa = release.one("ServiceAccount", release.service)
    email = release.values["serviceAccount"]["gcpServiceAccount"]
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == email
    assert email.startswith(f"{release.stack}-{release.service}@")
    assert pod_spec(release)["serviceAccountName"] == release.service


def test_cloud_sql_proxy_is_a_native_sidecar_and_the_app_uses_localhost(release):
    init = pod_spec(release)["initContainers"]
    assert [c["name"] for c in init] == ["cloud-sql-proxy"]
    proxy = init[0]
    assert proxy["restartPolicy"] == "Always"
    for flag in ("--auto-iam-authn", "--private-ip", "--structured-logs"):
        assert flag in proxy["args"]
    assert proxy["args"][-1] == release.values["cloudSqlProxy"]["instanceConnectionName"]
    assert re.search(r":\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$", proxy["image"])
    assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"
    assert set(proxy["resources"]["requests"]) == {"cpu", "memory", "ephemeral-storage"}
    user = release.values["database"]["user"]
    url = env_of(app_container(release))["DATABASE_URL"]
    assert url == f"postgresql+psycopg://{user.replace('@', '%40')}@127.0.0.1:5432/print_files"
    from sqlalchemy.engine import make_url

    parsed = make_url(url)  # what the services do with it
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (user, "127.0.0.1", 5432, "print_files")
    assert user == f"{release.stack}-{release.service}@print-platform-{release.stack}.iam"


def test_no_proxy_without_a_connection_name(stack_root, helm):
    spec = render.releases_from_settings("dev", stack_root)[0][0]
    spec.values["cloudSqlProxy"]["instanceConnectionName"] = ""
    text = render.helm_template(spec, helm)
    assert "cloud-sql-proxy" not in text.split("kind: Job")[0]
    assert "initContainers" not in text


def test_environment_variables_follow_the_seams(release):
    env = env_of(app_container(release))
    values = release.values
    assert env["GOOGLE_CLOUD_PROJECT"] == f"print-platform-{release.stack}"
    assert env["UPLOADS_BUCKET"] == values["app"]["uploadsBucket"]
    assert env["LOG_LEVEL"] == values["app"]["logLevel"]
    if release.service == "extractor":
        assert env["UPLOADS_SUBSCRIPTION"] == f"{release.stack}-uploads-extractor"
        for name in ("MAX_UPLOAD_BYTES", "WEB_CONCURRENCY", "MAX_CONCURRENT_UPLOADS"):
            assert name not in env, f"{name}: the extractor runs one gunicorn worker by design"
    else:
        assert env["MAX_UPLOAD_BYTES"] == "268435456"
        assert "UPLOADS_SUBSCRIPTION" not in env
        # Set explicitly (the chart does not rely on gunicorn.conf.py's / the settings' defaults): /tmp is sized
        # from workers x concurrent uploads x MAX_UPLOAD_BYTES (infra/releases.py check_tmp_capacity).
        assert env["WEB_CONCURRENCY"] == str(values["app"]["workers"])
        assert env["MAX_CONCURRENT_UPLOADS"] == str(values["app"]["maxConcurrentUploads"])
        worst = int(env["WEB_CONCURRENCY"]) * int(env["MAX_CONCURRENT_UPLOADS"]) * int(env["MAX_UPLOAD_BYTES"])
        tmp = [v for v in pod_spec(release)["volumes"] if v["name"] == "tmp"][0]["emptyDir"]["sizeLimit"]
        assert worst + releases.TMP_MARGIN_BYTES <= releases.quantity_bytes(tmp), f"{release.stack}: /tmp {tmp}"


def test_hpa_pdb_service(release):
    hpa = release.one("HorizontalPodAutoscaler")
    auto = release.values["autoscaling"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": release.service}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (auto["minReplicas"], auto["maxReplicas"])
    assert "replicas" not in release.one("Deployment")["spec"], "the HPA owns the replica count"
    if release.stack == "prod":
        assert hpa["spec"]["minReplicas"] >= 2
    pdb = release.one("PodDisruptionBudget")
    selector = release.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert pdb["spec"]["maxUnavailable"] == 1
    svc = release.one("Service")
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def test_network_policy_denies_by_default_and_allows_what_is_needed(release):
    np = release.one("NetworkPolicy", release.service)
    spec = np["spec"]
    assert spec["podSelector"] == {"matchLabels": release.one("Deployment")["spec"]["selector"]["matchLabels"]}
    assert "helm.sh/hook" not in np["metadata"].get("annotations", {}), "a release object, not a hook"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    sources = [peer.get("ipBlock", {}).get("cidr") for rule in spec["ingress"] for peer in rule["from"]]
    if release.service == "files-api":
        assert "35.191.0.0/16" in sources and "130.211.0.0/22" in sources
    else:
        assert "35.191.0.0/16" not in sources, "the extractor is not reachable from the load balancer"
    scrape_port = {"files-api": "ops", "extractor": "http"}[release.service]
    for rule in spec["ingress"]:
        from_lb = any("ipBlock" in peer for peer in rule["from"])
        assert rule["ports"] == [{"port": "http" if from_lb else scrape_port, "protocol": "TCP"}]
    scrapers = [peer["namespaceSelector"] for rule in spec["ingress"] for peer in rule["from"] if "namespaceSelector" in peer]
    assert scrapers == [{"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                               "values": ["gke-gmp-system", "gmp-system"]}]}]
    egress_ports = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (80, "TCP"), (988, "TCP"), (443, "TCP"), (3307, "TCP")} == egress_ports
    dns = [r for r in spec["egress"] if {"port": 53, "protocol": "UDP"} in r["ports"]][0]
    dns_blocks = [peer["ipBlock"]["cidr"] for peer in dns["to"] if "ipBlock" in peer]
    # Cloud DNS for GKE (new Autopilot clusters): the pods' nameserver is the metadata server, 169.254.169.254:53.
    assert dns_blocks == release.values["networkPolicy"]["dnsCidrs"] + ["169.254.20.10/32", "169.254.169.254/32"]
    from infra.settings import load_stack_settings

    assert release.values["networkPolicy"]["dnsCidrs"] == [load_stack_settings(release.stack).config.network.services_cidr]
    metadata = [r for r in spec["egress"] if r["ports"] == [{"port": 80, "protocol": "TCP"}]]
    assert metadata[0]["to"] == [{"ipBlock": {"cidr": "169.254.169.254/32"}}]
    sql = [r for r in spec["egress"] if r["ports"] == [{"port": 3307, "protocol": "TCP"}]][0]
    assert sql["to"] == [{"ipBlock": {"cidr": c}} for c in release.values["networkPolicy"]["cloudSqlCidrs"]]


HOOK = "helm.sh/hook"
WEIGHT = "helm.sh/hook-weight"


def _selects(policy, pod_labels) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) <= {"matchLabels"}, selector
    return all(pod_labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_every_pod_has_a_network_policy_in_place_when_it_starts(release):
    """The namespace denies everything by default (infra/gke.py), so each pod needs a policy of its own that exists
    before the pod: a hook pod (the pre-install migration Job runs before the release's objects exist) needs a hook
    policy for each of its events with a lower hook-weight; a release pod a release policy (Helm installs
    NetworkPolicy before Deployment)."""
    policies = [o for o in release.objects if o["kind"] == "NetworkPolicy"]
    for obj in release.objects:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        labels = obj["spec"]["template"]["metadata"]["labels"]
        annotations = obj["metadata"].get("annotations", {})
        matching = [p for p in policies if _selects(p, labels)]
        where = f"{release.stack}/{release.service} {obj['kind']} {obj['metadata']['name']}"
        if HOOK not in annotations:
            assert [p for p in matching if HOOK not in p["metadata"].get("annotations", {})], where
            continue
        events = set(annotations[HOOK].split(","))
        before = [p for p in matching if HOOK in p["metadata"].get("annotations", {})
                  and events <= set(p["metadata"]["annotations"][HOOK].split(","))
                  and int(p["metadata"]["annotations"][WEIGHT]) < int(annotations[WEIGHT])]
        assert before, f"{where}: no hook NetworkPolicy selecting its pods created before it ({events})"


def test_migration_hook_network_policy_allows_the_jobs_egress_only(rendered):
    for stack in STACKS:
        r = rendered[(stack, "files-api")]
        job, np = r.one("Job"), r.one("NetworkPolicy", "files-api-migrate")
        annotations = np["metadata"]["annotations"]
        assert annotations[HOOK] == job["metadata"]["annotations"][HOOK] == "pre-install,pre-upgrade"
        sa = r.one("ServiceAccount", "files-api-migrate")["metadata"]["annotations"]
        assert int(sa[WEIGHT]) <= int(annotations[WEIGHT]) < int(job["metadata"]["annotations"][WEIGHT])
        # Not deleted on hook-succeeded: a tool that deletes per hook would drop it before the Job runs.
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
        assert np["spec"]["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "print-service-migrate", "app.kubernetes.io/instance": "files-api"}
        assert _selects(np, job["spec"]["template"]["metadata"]["labels"])
        assert not _selects(np, r.one("Deployment")["spec"]["template"]["metadata"]["labels"])
        assert np["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in np["spec"]
        # DNS, metadata server (Workload Identity), Google APIs (Cloud SQL Admin), Cloud SQL: the service's egress.
        assert np["spec"]["egress"] == r.one("NetworkPolicy", "files-api")["spec"]["egress"]
        ports = {(p["port"], p["protocol"]) for rule in np["spec"]["egress"] for p in rule["ports"]}
        assert ports == {(53, "UDP"), (53, "TCP"), (80, "TCP"), (988, "TCP"), (443, "TCP"), (3307, "TCP")}
    for stack in STACKS:
        # the service's own policy, and the reconciler CronJobs' (cronjob-reconcile.yaml)
        assert sorted(o["metadata"]["name"] for o in rendered[(stack, "extractor")].objects
                      if o["kind"] == "NetworkPolicy") == ["extractor", "extractor-reconciler"]


def test_files_api_route_health_check_armor_and_iap(rendered):
    for stack in STACKS:
        r = rendered[(stack, "files-api")]
        route = r.one("HTTPRoute")
        gateway = r.values["route"]["gateway"]
        assert route["spec"]["parentRefs"] == [{
            "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"],
            "namespace": gateway["namespace"], "sectionName": "https"}]
        assert route["spec"]["hostnames"] == r.values["route"]["hostnames"]
        assert route["spec"]["rules"][0]["backendRefs"] == [
            {"group": "", "kind": "Service", "name": "files-api", "port": 80}]
        assert [m["path"] for m in route["spec"]["rules"][0]["matches"]] == r.values["route"]["paths"]
        hc = r.one("HealthCheckPolicy")
        assert hc["spec"]["default"]["config"]["httpHealthCheck"] == {
            "port": 8080, "portSpecification": "USE_FIXED_PORT", "requestPath": "/healthz"}
        target = {"group": "", "kind": "Service", "name": "files-api"}
        assert hc["spec"]["targetRef"] == target
        backend = r.one("GCPBackendPolicy")
        assert backend["spec"]["targetRef"] == target
        assert backend["spec"]["default"]["securityPolicy"] == f"print-platform-{stack}-armor"
        assert backend["spec"]["default"]["logging"] == {"enabled": True, "sampleRate": 1000000}
        iap_enabled = r.values["route"]["iap"]["enabled"]
        assert ("iap" in backend["spec"]["default"]) is iap_enabled
    assert rendered[("prod", "files-api")].one("GCPBackendPolicy")["spec"]["default"]["iap"] == {"enabled": True}
    for stack in STACKS:
        kinds = rendered[(stack, "extractor")].kinds()
        assert not {"HTTPRoute", "HealthCheckPolicy", "GCPBackendPolicy"} & set(kinds)


def test_pod_monitoring_scrapes_metrics(release):
    pm = release.one("PodMonitoring")
    assert pm["apiVersion"] == "monitoring.googleapis.com/v1"
    port = {"files-api": "ops", "extractor": "http"}[release.service]
    assert pm["spec"]["endpoints"] == [{"port": port, "path": "/metrics", "interval": "30s"}]
    assert pm["spec"]["selector"]["matchLabels"] == release.one("Deployment")["spec"]["selector"]["matchLabels"]


def test_migration_hook_job_only_for_files_api(rendered):
    for stack in STACKS:
        assert "Job" not in rendered[(stack, "extractor")].kinds()
        r = rendered[(stack, "files-api")]
        job = r.one("Job")
        hook_sa = r.one("ServiceAccount", "files-api-migrate")
        for obj in (job, hook_sa):
            assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(hook_sa["metadata"]["annotations"]["helm.sh/hook-weight"]) < \
            int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert hook_sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
            r.values["serviceAccount"]["gcpServiceAccount"]
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        assert spec["serviceAccountName"] == "files-api-migrate"
        main = spec["containers"][0]
        assert main["command"] == ["pipeline-migrate"]
        assert main["image"] == app_container(r)["image"], "migrations run with the files-api image"
        assert env_of(main)["DATABASE_URL"] == env_of(app_container(r))["DATABASE_URL"]
        extractor_user = rendered[(stack, "extractor")].values["database"]["user"]
        reconciler_user = rendered[(stack, "extractor")].values["reconcile"]["databaseUser"]
        assert env_of(main)["MIGRATE_GRANT_TO"] == f"{extractor_user},{reconciler_user}", \
            "the extractor's and the reconciler's users get row access"
        assert "MIGRATE_GRANT_TO" not in env_of(app_container(r))
        assert spec["initContainers"][0]["restartPolicy"] == "Always", "native sidecar: the Job can complete"
        pod_labels = job["spec"]["template"]["metadata"]["labels"]
        selector = r.one("Service")["spec"]["selector"]
        assert not all(pod_labels.get(k) == v for k, v in selector.items()), "the Service must not select the Job"


def test_chart_checksum_is_on_the_pod_template(release):
    annotations = release.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/chart"] == releases.chart_checksum()


def test_chart_checksum_changes_with_a_template(tmp_path):
    copy = tmp_path / "chart"
    shutil.copytree(releases.CHART_DIR, copy)
    before = releases.chart_checksum(copy)
    assert before == releases.chart_checksum()
    path = copy / "templates" / "service.yaml"
    path.write_text(path.read_text() + "\n# changed\n")
    assert releases.chart_checksum(copy) != before


def test_render_is_deterministic_and_writes_one_file_per_release(stack_root, helm, tmp_path, rendered):
    for stack in STACKS:
        written, notes = render.render(stack, tmp_path, source="settings", root=stack_root, helm=helm)
        assert not notes
        assert sorted(p.name for p in written) == sorted(f"{s}.yaml" for s in releases.SERVICES)
        for path in written:
            assert path.parent == tmp_path / stack
            assert path.read_text() == rendered[(stack, path.stem)].text
        again = render_stack(stack, stack_root, helm)
        assert {s: r.text for s, r in again.items()} == {s: rendered[(stack, s)].text for s in again}


def test_render_skips_a_service_without_image_digest_and_says_so(tmp_path, helm):
    # The repository's own stack files pin no digest: both images are built by `pulumi up`,
    # so the settings know no digest; skipped (placeholder None) or rendered with the placeholder.
    specs, notes = render.releases_from_settings("dev", ROOT)
    assert specs == []
    assert sorted(n.split(":")[0] for n in notes) == sorted(releases.SERVICES)
    for note in notes:
        assert "built by `pulumi up`" in note and "print-platform:images" in note
    specs, notes = render.releases_from_settings("dev", ROOT, placeholder_digest=render.PLACEHOLDER_DIGEST)
    assert sorted(s.name for s in specs) == sorted(releases.SERVICES) and all(s.placeholder for s in specs)
    assert all(s.values["image"]["digest"] == render.PLACEHOLDER_DIGEST for s in specs)


@pytest.mark.parametrize("stack", STACKS)
def test_preview_values_equal_the_pure_function(stack, stack_root):
    """The program (offline preview under mocks) computes the same values as release_values over the settings."""
    from_preview = render.releases_from_preview(stack, stack_root)
    from_settings, _ = render.releases_from_settings(stack, stack_root)
    preview = {s.name: (s.namespace, s.values) for s in from_preview}
    settings = {s.name: (s.namespace, s.values) for s in from_settings}
    assert sorted(preview) == sorted(settings) == sorted(releases.SERVICES)
    for name in preview:
        assert preview[name] == settings[name], name


def test_render_from_a_saved_preview_document(stack_root, helm, tmp_path, rendered):
    """--preview-json: the preview diff hands over the document it already computed; same manifests."""
    import json

    path = tmp_path / "prod.json"
    path.write_text(json.dumps(render.run_preview("prod", stack_root)))
    document = render.load_preview_document(path, "prod")
    written, notes = render.render("prod", tmp_path / "out", root=stack_root, helm=helm, preview_document=document)
    assert not notes and sorted(p.stem for p in written) == sorted(releases.SERVICES)
    for written_path in written:
        assert written_path.read_text() == rendered[("prod", written_path.stem)].text
    with pytest.raises(render.RenderError, match="the preview of stack 'prod', not of 'dev'"):
        render.load_preview_document(path, "dev")
    with pytest.raises(render.RenderError, match="the values source is 'settings'"):
        render.render("prod", tmp_path / "out", source="settings", root=stack_root, helm=helm,
                      preview_document=document)
    path.write_text("[]")
    with pytest.raises(render.RenderError, match="not a preview document"):
        render.load_preview_document(path, "prod")
    with pytest.raises(SystemExit) as info:
        render.main(["--stack", "prod", "--source", "settings", "--preview-json", str(path)])
    assert info.value.code == 2


def test_extractor_graceful_timeout_matches_the_apps_own_rule(rendered):
    """The extractor's gunicorn.conf derives graceful_timeout = drain + margin; the chart's number must agree."""
    from extractor.config import GRACEFUL_TIMEOUT_MARGIN_SECONDS

    for stack in STACKS:
        shutdown = rendered[(stack, "extractor")].values["shutdown"]
        assert shutdown["gracefulTimeoutSeconds"] == shutdown["drainTimeoutSeconds"] + GRACEFUL_TIMEOUT_MARGIN_SECONDS


def test_files_api_backend_timeout_covers_gunicorns_worker_timeout(rendered):
    for stack in STACKS:
        backend = rendered[(stack, "files-api")].one("GCPBackendPolicy")["spec"]["default"]
        assert backend["timeoutSec"] >= 300, "gunicorn timeout is 300 s (apps/files-api/gunicorn.conf.py)"
        assert backend["connectionDraining"]["drainingTimeoutSec"] <= rendered[(stack, "files-api")].values["shutdown"]["gracefulTimeoutSeconds"]


def test_a_service_without_image_is_rendered_with_a_marked_placeholder(stack_root, helm, tmp_path):
    """An image built by `pulumi up` has no digest before; the chart stays reviewable with an obvious placeholder."""
    import yaml

    root = tmp_path / "root"
    shutil.copytree(stack_root, root)
    stack_file = root / "Pulumi.prod.yaml"
    data = yaml.safe_load(stack_file.read_text())
    del data["config"]["print-platform:images"]["extractor"]
    stack_file.write_text(yaml.safe_dump(data))
    written, notes = render.render("prod", tmp_path / "out", source="preview", root=root, helm=helm)
    assert sorted(p.name for p in written) == ["extractor.yaml", "files-api.yaml"]
    assert len(notes) == 1 and notes[0].startswith("extractor: its image is built by `pulumi up`")
    extractor = (tmp_path / "out" / "prod" / "extractor.yaml").read_text()
    assert extractor.startswith("# extractor: image built by `pulumi up`")
    assert f"extractor@{render.PLACEHOLDER_DIGEST}" in extractor
    files_api = (tmp_path / "out" / "prod" / "files-api.yaml").read_text()
    assert not files_api.startswith("#") and render.PLACEHOLDER_DIGEST not in files_api
    written, notes = render.render("prod", tmp_path / "out", source="settings", root=root, helm=helm,
                                   placeholders=False)
    assert [p.name for p in written] == ["files-api.yaml"]
    assert not (tmp_path / "out" / "prod" / "extractor.yaml").exists(), "stale files are removed"


def _cpu(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def _gib(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return float(q[:-2]) * units[q[-2:]] / 2**30 if q[-2:] in units else float(q) / 2**30


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pod_requests_fit_autopilot_ratio(kind, rendered):
    """GKE Autopilot (the stacks' cluster mode) bumps a pod whose memory:CPU request ratio is outside 1..6.5 GiB
    per vCPU (https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-resource-requests); keep within."""
    for (stack, service), r in rendered.items():
        if kind not in r.kinds():
            continue
        spec = r.one(kind)["spec"]["template"]["spec"]
        containers = spec["containers"] + spec.get("initContainers", [])
        cpu = sum(_cpu(str(c["resources"]["requests"]["cpu"])) for c in containers)
        mem = sum(_gib(str(c["resources"]["requests"]["memory"])) for c in containers)
        assert 1 <= mem / cpu <= 6.5, f"{stack}/{service} {kind}: {mem:.2f} GiB / {cpu:.2f} vCPU"


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_ephemeral_storage_request_is_the_limit_and_tmp_fits(kind, rendered):
    """GKE Autopilot sets a container's ephemeral-storage limit to its request (only CPU and memory burst), so
    request = limit, and the /tmp emptyDir (counted in the pod's ephemeral storage) stays below the app's share."""
    for (stack, service), r in rendered.items():
        if kind not in r.kinds():
            continue
        spec = r.one(kind)["spec"]["template"]["spec"]
        for c in spec["containers"] + spec.get("initContainers", []):
            res = c["resources"]
            assert res["requests"]["ephemeral-storage"] == res["limits"]["ephemeral-storage"], \
                f"{stack}/{service} {kind} {c['name']}: {res}"
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"][0]["emptyDir"]["sizeLimit"]
        app = spec["containers"][0]["resources"]["requests"]["ephemeral-storage"]
        assert _gib(str(tmp)) < _gib(str(app)), f"{stack}/{service} {kind}: /tmp {tmp} vs {app}"
