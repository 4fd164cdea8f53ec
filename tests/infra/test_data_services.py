"""Cloud SQL, GCS, Pub/Sub and Artifact Registry invariants, per real stack file."""
from __future__ import annotations

from infra.settings import SERVICES, StackSettings
from tools.mock_runtime import Capture

INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
BUCKET = "gcp:storage/bucket:Bucket"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
TOPIC = "gcp:pubsub/topic:Topic"
#: What the issue fixes per stack (not read from the stack file on purpose).
EXPECTED_AVAILABILITY = {"dev": "ZONAL", "prod": "REGIONAL"}


def _instance_settings(run: Capture) -> dict:
    return run.one(INSTANCE).inputs["settings"]


def test_postgres_16_private_ip_only_tls_only(run: Capture, settings: StackSettings):
    instance = run.one(INSTANCE)
    assert instance.inputs["databaseVersion"] == "POSTGRES_16"
    ip = instance.inputs["settings"]["ipConfiguration"]
    assert ip["ipv4Enabled"] is False
    assert "authorizedNetworks" not in ip
    assert ip["privateNetwork"] == f"projects/{settings.project}/global/networks/{settings.names.network}"
    assert ip["sslMode"] == "ENCRYPTED_ONLY"
    # The private IP needs the PSA peering first.
    assert run.one("gcp:servicenetworking/connection:Connection").urn in instance.dependencies


def test_backups_with_point_in_time_recovery_for_seven_days(run: Capture):
    backups = _instance_settings(run)["backupConfiguration"]
    assert backups["enabled"] is True
    assert backups["pointInTimeRecoveryEnabled"] is True
    assert backups["transactionLogRetentionDays"] == 7
    assert backups["backupRetentionSettings"] == {"retainedBackups": 7, "retentionUnit": "COUNT"}


def test_availability_per_stack(run: Capture, stack: str, settings: StackSettings):
    assert _instance_settings(run)["availabilityType"] == EXPECTED_AVAILABILITY[stack]
    assert _instance_settings(run)["tier"] == settings.config.database.tier
    assert _instance_settings(run)["edition"] == settings.config.database.edition.value


def test_deletion_protection_on_all_three_layers(run: Capture, stack: str, settings: StackSettings):
    instance = run.one(INSTANCE)
    expected = stack == "prod"
    assert settings.protect is expected
    assert instance.protect is expected  # Pulumi protect
    assert instance.inputs["deletionProtection"] is expected  # provider
    assert instance.inputs["settings"]["deletionProtectionEnabled"] is expected  # Cloud SQL API


def test_iam_authentication_and_query_insights(run: Capture):
    s = _instance_settings(run)
    assert {"name": "cloudsql.iam_authentication", "value": "on"} in s["databaseFlags"]
    assert s["insightsConfig"]["queryInsightsEnabled"] is True


def test_app_database_and_one_iam_user_per_service(run: Capture, settings: StackSettings):
    database = run.one("gcp:sql/database:Database")
    assert database.inputs["name"] == settings.names.database_name
    assert database.protect is settings.protect
    # Postgres refuses to drop a database other roles can access (the services' users).
    assert database.inputs["deletionPolicy"] == "ABANDON"
    users = {u.name: u for u in run.of_type("gcp:sql/user:User")}
    assert set(users) == {f"{s}-iam" for s in SERVICES} | {"reconciler-iam"}
    assert users["reconciler-iam"].inputs["name"] == settings.names.reconciler_database_user
    for service in SERVICES:
        user = users[f"{service}-iam"]
        assert user.inputs["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
        assert user.inputs["name"] == settings.names.database_users[service]
        assert "password" not in user.inputs
        # Postgres cannot drop a role that owns tables or holds grants: the user goes
        # with the instance instead of failing `pulumi destroy`.
        assert user.inputs["deletionPolicy"] == "ABANDON"
        account = run.one("gcp:serviceaccount/account:Account", service)
        assert account.urn in user.dependencies


def test_uploads_bucket_is_private_versioned_and_protected(run: Capture, stack: str, settings: StackSettings):
    bucket = run.one(BUCKET)
    assert bucket.inputs["name"] == settings.names.uploads_bucket
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["versioning"] == {"enabled": True}
    rules = bucket.inputs["lifecycleRules"]
    noncurrent = [r for r in rules if r["action"]["type"] == "Delete" and "daysSinceNoncurrentTime" in r["condition"]]
    assert [r["condition"]["daysSinceNoncurrentTime"] for r in noncurrent] == [
        settings.config.storage.noncurrent_version_retention_days]
    assert bucket.inputs["forceDestroy"] is (stack != "prod")
    assert bucket.protect is (stack == "prod")


def test_nothing_is_granted_to_the_public(run: Capture):
    for r in run.resources:
        member = r.inputs.get("member")
        if member is not None:
            assert member not in ("allUsers", "allAuthenticatedUsers"), r.urn
        for m in r.inputs.get("members", []) or []:
            assert m not in ("allUsers", "allAuthenticatedUsers"), r.urn


def test_finalize_notification_to_the_uploads_topic(run: Capture, settings: StackSettings):
    notification = run.one("gcp:storage/notification:Notification")
    topic = run.one(TOPIC, "uploads")
    assert notification.inputs["eventTypes"] == ["OBJECT_FINALIZE"]
    assert notification.inputs["payloadFormat"] == "JSON_API_V1"
    assert notification.inputs["bucket"] == settings.names.uploads_bucket
    assert notification.inputs["topic"] == f"projects/{settings.project}/topics/{settings.names.uploads_topic}"
    assert topic.urn in notification.dependencies
    grant = run.one("gcp:pubsub/topicIAMMember:TopicIAMMember", "gcs-agent-publishes-uploads")
    assert grant.inputs["topic"] == settings.names.uploads_topic
    assert grant.inputs["role"] == "roles/pubsub.publisher"
    assert grant.inputs["member"].startswith("serviceAccount:service-")
    assert grant.inputs["member"].endswith("@gs-project-accounts.iam.gserviceaccount.com")
    # GCS checks the publish permission when creating the notification.
    assert grant.urn in notification.dependencies


def test_extractor_subscription_retry_and_dead_letter(run: Capture, settings: StackSettings):
    names, ps = settings.names, settings.pubsub
    sub = run.one(SUBSCRIPTION, "extractor")
    assert sub.inputs["name"] == names.extractor_subscription
    assert sub.inputs["topic"] == f"projects/{settings.project}/topics/{names.uploads_topic}"
    assert sub.inputs["ackDeadlineSeconds"] == ps.ack_deadline_seconds
    assert sub.inputs["messageRetentionDuration"] == ps.message_retention_duration
    assert sub.inputs["retryPolicy"] == {"minimumBackoff": ps.minimum_backoff, "maximumBackoff": ps.maximum_backoff}
    assert sub.inputs["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{settings.project}/topics/{names.dead_letter_topic}",
        "maxDeliveryAttempts": ps.max_delivery_attempts,
    }
    dead = run.one(SUBSCRIPTION, "uploads-dead-letter")
    assert dead.inputs["name"] == names.dead_letter_subscription
    assert dead.inputs["topic"] == f"projects/{settings.project}/topics/{names.dead_letter_topic}"


def test_pubsub_agent_can_forward_to_the_dead_letter_topic(run: Capture, settings: StackSettings):
    publish = run.one("gcp:pubsub/topicIAMMember:TopicIAMMember", "agent-publishes-dead-letter")
    subscribe = run.one("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember", "agent-subscribes-extractor")
    assert publish.inputs["topic"] == settings.names.dead_letter_topic
    assert publish.inputs["role"] == "roles/pubsub.publisher"
    assert subscribe.inputs["subscription"] == settings.names.extractor_subscription
    assert subscribe.inputs["role"] == "roles/pubsub.subscriber"
    for grant in (publish, subscribe):
        assert grant.inputs["member"].endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")


def test_registry_is_regional_docker_readable_by_the_nodes(run: Capture, settings: StackSettings):
    repo = run.one("gcp:artifactregistry/repository:Repository", "services")
    assert repo.inputs["format"] == "DOCKER"
    assert repo.inputs["location"] == settings.region
    assert repo.inputs["repositoryId"] == settings.names.registry_repository
    assert repo.inputs["dockerConfig"] == {"immutableTags": True}
    reader = run.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert reader.inputs["role"] == "roles/artifactregistry.reader"
    assert reader.inputs["repository"] == settings.names.registry_repository
    assert reader.inputs["member"] == (
        f"serviceAccount:{settings.names.node_service_account}@{settings.project}.iam.gserviceaccount.com")
    assert run.outputs["registry_url"] == (
        f"{settings.region}-docker.pkg.dev/{settings.project}/{settings.names.registry_repository}")


def test_build_cache_repository_is_separate_mutable_and_self_cleaning(run: Capture, settings: StackSettings):
    """BuildKit overwrites <service>:buildcache on every build: that needs mutable tags, which the
    images' repository must never have; so the cache lives in a repository of its own."""
    cache = run.one("gcp:artifactregistry/repository:Repository", "build-cache")
    assert cache.inputs["repositoryId"] == settings.names.registry_cache_repository
    assert cache.inputs["repositoryId"] != settings.names.registry_repository
    assert cache.inputs["format"] == "DOCKER" and cache.inputs["location"] == settings.region
    assert cache.inputs["dockerConfig"] == {"immutableTags": False}
    (rule,) = cache.inputs["cleanupPolicies"]
    assert rule["action"] == "DELETE" and rule["condition"]["tagState"] == "UNTAGGED"
    readers = [r for r in run.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
               if r.inputs["repository"] == settings.names.registry_cache_repository]
    assert not readers, "nothing in the cluster reads the build cache"
