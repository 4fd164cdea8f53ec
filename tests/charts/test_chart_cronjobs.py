"""The reconciliation CronJobs as rendered for each stack: the reconciler's own identity, its
schedule and bound from the stack config, the suspended dead-letter re-drive, the sweep."""
from __future__ import annotations

import pytest

from infra.settings import cron_schedule, load_stack_settings

from chart_support import STACKS


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _pod(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_reconciler_runs_on_the_stacks_schedule_under_its_own_identity(rendered, stack_root, stack):
    settings = load_stack_settings(stack, root=stack_root)
    r = rendered[(stack, "extractor")]
    names, rec = settings.names, settings.config.reconcile
    sa = r.one("ServiceAccount", names.reconciler_kubernetes_service_account)
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        f"{names.reconciler_service_account}@{settings.project}.iam.gserviceaccount.com"
    assert sa["automountServiceAccountToken"] is False
    cron = r.one("CronJob", "extractor-reconcile")
    assert cron["spec"]["schedule"] == cron_schedule(rec.interval_seconds)
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = _pod(cron)
    assert pod["serviceAccountName"] == names.reconciler_kubernetes_service_account
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    main = pod["containers"][0]
    assert main["command"] == ["extractor-reconcile", "pending"]
    assert main["image"] == r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    env = _env(main)
    assert env["PENDING_BOUND_SECONDS"] == str(rec.pending_bound_seconds)
    assert env["MAX_REDRIVES"] == str(rec.max_redrives)
    assert env["UPLOADS_TOPIC"] == names.uploads_topic
    assert env["DEAD_LETTER_SUBSCRIPTION"] == names.dead_letter_subscription
    assert env["DATABASE_URL"].startswith(
        "postgresql+psycopg://" + names.reconciler_database_user.replace("@", "%40") + "@127.0.0.1:")
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["runAsNonRoot"] is True
    proxy = pod["initContainers"][0]
    assert proxy["name"] == "cloud-sql-proxy" and proxy["restartPolicy"] == "Always", "native sidecar: the Job ends"


@pytest.mark.parametrize("stack", STACKS)
def test_dead_letter_redrive_is_suspended_until_started_by_hand(rendered, stack):
    r = rendered[(stack, "extractor")]
    cron = r.one("CronJob", "extractor-redrive")
    assert cron["spec"]["suspend"] is True
    pod = _pod(cron)
    assert pod["containers"][0]["command"] == ["extractor-reconcile", "dead-letters"]
    assert pod["serviceAccountName"] == "extractor-reconciler"


@pytest.mark.parametrize("stack", STACKS)
def test_job_pods_have_their_own_egress_only_network_policy(rendered, stack):
    for service, job, policy in (("extractor", "extractor-reconcile", "extractor-reconciler"),
                                 ("files-api", "files-api-sweep", "files-api-sweep")):
        r = rendered[(stack, service)]
        np = r.one("NetworkPolicy", policy)
        labels = r.one("CronJob", job)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in np["spec"]["podSelector"]["matchLabels"].items())
        assert "ingress" not in np["spec"] and np["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert np["spec"]["egress"] == r.one("NetworkPolicy", service)["spec"]["egress"]
        selector = r.one("Service")["spec"]["selector"]
        assert not all(labels.get(k) == v for k, v in selector.items()), "the Service must not select job pods"


@pytest.mark.parametrize("stack", STACKS)
def test_sweep_runs_as_files_api_with_the_stacks_age_and_schedule(rendered, stack_root, stack):
    settings = load_stack_settings(stack, root=stack_root)
    rec = settings.config.reconcile
    r = rendered[(stack, "files-api")]
    cron = r.one("CronJob", "files-api-sweep")
    assert cron["spec"]["schedule"] == cron_schedule(rec.sweep_interval_seconds)
    pod = _pod(cron)
    assert pod["serviceAccountName"] == "files-api"
    main = pod["containers"][0]
    assert main["command"] == ["files-api-sweep", "--older-than-seconds", str(rec.unfinished_upload_age_seconds)]
    app = r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert _env(main)["DATABASE_URL"] == _env(app)["DATABASE_URL"]
    assert "CronJob" not in [o["kind"] for o in rendered[(stack, "extractor")].objects
                             if o["metadata"]["name"].endswith("sweep")]


def test_cron_schedule_covers_minutes_and_the_hour():
    assert cron_schedule(60) == "* * * * *"
    assert cron_schedule(300) == "*/5 * * * *"
    assert cron_schedule(3600) == "0 * * * *"
    assert cron_schedule(10) == "* * * * *"  # below cron's resolution: every minute


@pytest.mark.parametrize("stack", STACKS)
def test_services_get_what_they_report_the_path_with(rendered, stack_root, stack):
    """files-api's /readyz checks the bucket notifies UPLOADS_TOPIC; the extractor counts the nacks that
    dead-letter a message (MAX_DELIVERY_ATTEMPTS = the subscription's policy)."""
    settings = load_stack_settings(stack, root=stack_root)
    files_api = rendered[(stack, "files-api")].one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    extractor = rendered[(stack, "extractor")].one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert _env(files_api)["UPLOADS_TOPIC"] == settings.names.uploads_topic
    assert _env(extractor)["MAX_DELIVERY_ATTEMPTS"] == str(settings.pubsub.max_delivery_attempts)
    assert _env(extractor)["MAX_MESSAGES"], "the environment's own extraEnv is kept beside the stack's"
