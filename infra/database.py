"""Cloud SQL for PostgreSQL 16: private IP only, TLS only, PITR backups, IAM database
authentication with one ``CLOUD_IAM_SERVICE_ACCOUNT`` user per service, query insights,
and the application database.

Sources: https://cloud.google.com/sql/docs/postgres/configure-private-ip,
https://cloud.google.com/sql/docs/postgres/admin-api/rest/v1/instances (sslMode, edition),
https://cloud.google.com/sql/docs/postgres/backup-recovery/pitr,
https://cloud.google.com/sql/docs/postgres/high-availability,
https://cloud.google.com/sql/docs/postgres/deletion-protection,
https://cloud.google.com/sql/docs/postgres/iam-authentication (flag cloudsql.iam_authentication,
user name = service account e-mail without ``.gserviceaccount.com``),
https://cloud.google.com/sql/docs/postgres/using-query-insights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp

DATABASE_VERSION = "POSTGRES_16"
#: Days of automated backups kept and of write-ahead log kept for point-in-time recovery.
BACKUP_RETENTION_DAYS = 7
#: Only TLS connections (the Cloud SQL Auth Proxy always uses TLS).
SSL_MODE = "ENCRYPTED_ONLY"
#: Postgres flag enabling IAM database authentication.
IAM_AUTH_FLAG = "cloudsql.iam_authentication"
#: The service that runs the Alembic migrations (pipeline-core) and so must be able to
#: create tables: Postgres 15+ grants CREATE on schema ``public`` only to the database
#: owner (``cloudsqlsuperuser`` members for databases made through the API).
MIGRATOR_SERVICE = "files-api"
MIGRATOR_ROLES = ("cloudsqlsuperuser",)
#: Deletion policy of the database and the IAM users. Postgres refuses to drop a role
#: that owns objects or holds grants, and a database other roles can access, so a
#: DELETE would fail `pulumi destroy` (and any rename) once the services have migrated;
#: both go with the instance instead, which carries the deletion protection.
ABANDON = "ABANDON"
#: Suffix dropped from a service account e-mail to form its Postgres IAM user name.
SA_EMAIL_SUFFIX = ".gserviceaccount.com"


@dataclass(frozen=True)
class DatabaseArgs:
    """Inputs of :class:`Database`.

    Attributes:
        project, region: where the instance lives.
        instance_name: Cloud SQL instance name. database_name: the application database.
        tier, edition (``ENTERPRISE`` | ``ENTERPRISE_PLUS``), availability (``ZONAL`` | ``REGIONAL``),
        disk_size_gb, backup_start_time (``HH:MM`` UTC), maintenance_day (1-7), maintenance_hour (0-23):
            validated by ``infra.settings.DatabaseConfig``.
        network_id: VPC for the private IP.
        private_service_access: the PSA connection the instance must wait for.
        service_account_emails: ``{service: Output[email]}``; one IAM database user each.
        protect: Pulumi ``protect``, provider ``deletion_protection`` and API
            ``deletion_protection_enabled`` (all three, prod).
        labels: instance user labels.
    """

    project: str
    region: str
    instance_name: str
    database_name: str
    tier: str
    edition: str
    availability: str
    disk_size_gb: int
    backup_start_time: str
    maintenance_day: int
    maintenance_hour: int
    network_id: pulumi.Input[str]
    private_service_access: pulumi.Resource
    service_account_emails: Mapping[str, pulumi.Input[str]]
    protect: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def iam_user_name(email: str) -> str:
    """Postgres IAM user name of a service account: its e-mail without ``.gserviceaccount.com``."""
    return email[: -len(SA_EMAIL_SUFFIX)] if email.endswith(SA_EMAIL_SUFFIX) else email


class Database(pulumi.ComponentResource):
    """Cloud SQL instance, application database and IAM users.

    Attributes:
        instance: the ``sql.DatabaseInstance``; ``instance_name``, ``connection_name``
            (``<project>:<region>:<instance>``), ``private_ip_address`` (Output[str]).
        database: the ``sql.Database``; ``database_name`` (str).
        users: ``{service: sql.User}``; ``user_names`` ``{service: Output[str]}``.
    """

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.instance = gcp.sql.DatabaseInstance(
            "postgres",
            name=args.instance_name,
            project=args.project,
            region=args.region,
            database_version=DATABASE_VERSION,
            # Layer 2 of 3: the provider refuses to delete the instance.
            deletion_protection=args.protect,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                tier=args.tier,
                # Why explicit: POSTGRES_16 defaults to ENTERPRISE_PLUS, whose tiers differ.
                edition=args.edition,
                # REGIONAL = HA with a synchronous standby in another zone (prod).
                availability_type=args.availability,
                disk_type="PD_SSD",
                disk_size=args.disk_size_gb,
                disk_autoresize=True,
                # Layer 3 of 3: the Cloud SQL API refuses deletion from any client.
                deletion_protection_enabled=args.protect,
                # Why: a deleted protected instance still leaves its backups behind.
                retain_backups_on_delete=args.protect,
                backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    start_time=args.backup_start_time,
                    # Why PITR: restore to any second in the retention window, not just the nightly backup.
                    point_in_time_recovery_enabled=True,
                    transaction_log_retention_days=BACKUP_RETENTION_DAYS,
                    backup_retention_settings=gcp.sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                        retained_backups=BACKUP_RETENTION_DAYS,
                        retention_unit="COUNT",
                    ),
                ),
                ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    # Why: no public IPv4 at all; clients reach it over the VPC (PSA).
                    ipv4_enabled=False,
                    private_network=args.network_id,
                    ssl_mode=SSL_MODE,
                ),
                database_flags=[
                    gcp.sql.DatabaseInstanceSettingsDatabaseFlagArgs(name=IAM_AUTH_FLAG, value="on"),
                ],
                insights_config=gcp.sql.DatabaseInstanceSettingsInsightsConfigArgs(
                    query_insights_enabled=True,
                    query_string_length=1024,
                    record_application_tags=True,
                    # Why not: client addresses are pod IPs, noise rather than signal.
                    record_client_address=False,
                ),
                maintenance_window=gcp.sql.DatabaseInstanceSettingsMaintenanceWindowArgs(
                    day=args.maintenance_day,
                    hour=args.maintenance_hour,
                    update_track="stable",
                ),
                user_labels=dict(args.labels),
            ),
            # Layer 1 of 3: Pulumi refuses to delete or replace it.
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=[args.private_service_access]
            ),
        )
        self.instance_name = self.instance.name
        self.connection_name = self.instance.connection_name
        self.private_ip_address = self.instance.private_ip_address

        self.database = gcp.sql.Database(
            "app",
            name=args.database_name,
            project=args.project,
            instance=self.instance.name,
            charset="UTF8",
            collation="en_US.UTF8",
            deletion_policy=ABANDON,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.database_name = args.database_name

        self.users: dict[str, gcp.sql.User] = {}
        self.user_names: dict[str, pulumi.Output[str]] = {}
        for service, email in sorted(args.service_account_emails.items()):
            user = gcp.sql.User(
                f"{service}-iam",
                project=args.project,
                instance=self.instance.name,
                name=pulumi.Output.from_input(email).apply(iam_user_name),
                type="CLOUD_IAM_SERVICE_ACCOUNT",
                database_roles=list(MIGRATOR_ROLES) if service == MIGRATOR_SERVICE else None,
                deletion_policy=ABANDON,
                opts=child,
            )
            self.users[service] = user
            self.user_names[service] = user.name
        self.register_outputs(
            {
                "connection_name": self.connection_name,
                "private_ip_address": self.private_ip_address,
            }
        )
