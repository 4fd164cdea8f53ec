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

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, field_validator, model_validator

from infra.config import ConfigModel

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


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# Cloud SQL Enterprise Plus machine types (https://cloud.google.com/sql/docs/postgres/machine-series-overview).
_ENTERPRISE_PLUS_TIER = re.compile(r"^db-perf-optimized-N-(2|4|8|16|32|48|64|80|96|128)$")
# Enterprise edition machine types: shared-core and custom (db-custom-<vCPU>-<MiB>).
_ENTERPRISE_TIER = re.compile(r"^(db-f1-micro|db-g1-small|db-custom-[0-9]+-[0-9]+)$")
class Edition(str, Enum):
    """Cloud SQL editions (https://cloud.google.com/sql/docs/editions-intro)."""

    ENTERPRISE = "ENTERPRISE"
    ENTERPRISE_PLUS = "ENTERPRISE_PLUS"


class Availability(str, Enum):
    """Cloud SQL availability type: ``REGIONAL`` is the HA configuration (standby in a second zone)."""

    ZONAL = "ZONAL"
    REGIONAL = "REGIONAL"


class SqlMaintenanceWindow(ConfigModel):
    """Cloud SQL maintenance window: ``day`` 1 (Monday) .. 7 (Sunday), ``hour`` 0..23 UTC."""

    day: int = Field(ge=1, le=7)
    hour: int = Field(ge=0, le=23)


class DatabaseConfig(ConfigModel):
    """``print-platform:database``, the inputs of :class:`Database`: size and availability of the Cloud SQL instance.

    Attributes:
        tier: machine type; must belong to ``edition`` (``db-perf-optimized-N-*``
            for ENTERPRISE_PLUS; ``db-f1-micro``, ``db-g1-small`` or ``db-custom-<cpu>-<MiB>``
            for ENTERPRISE).
        edition: ``ENTERPRISE`` | ``ENTERPRISE_PLUS`` (set explicitly: Postgres 16
            defaults to Enterprise Plus, which rejects the Enterprise tiers).
        availability: ``ZONAL`` | ``REGIONAL``.
        disk_size_gb: initial SSD size, GB (>= 10; grows automatically).
        backup_start_time: ``HH:MM`` UTC start of the daily backup window.
        maintenance_window: :class:`SqlMaintenanceWindow`.
    """

    edition: Edition = Edition.ENTERPRISE
    tier: str = Field(description="a machine type of `edition`: `db-perf-optimized-N-<cpus>` (ENTERPRISE_PLUS); "
                      "`db-f1-micro`, `db-g1-small`, `db-custom-<cpus>-<MiB>` (ENTERPRISE)")
    availability: Availability = Field(description="`REGIONAL` (high availability) required when `protect` is true")
    disk_size_gb: int = Field(ge=10, le=65536)
    backup_start_time: str = Field(default="02:00", description="`HH:MM` UTC")
    maintenance_window: SqlMaintenanceWindow = SqlMaintenanceWindow(day=7, hour=3)

    @field_validator("backup_start_time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a time of day HH:MM")
        return v

    @model_validator(mode="after")
    def _tier_matches_edition(self) -> "DatabaseConfig":
        pattern = _ENTERPRISE_PLUS_TIER if self.edition is Edition.ENTERPRISE_PLUS else _ENTERPRISE_TIER
        if not pattern.match(self.tier):
            raise ValueError(f"tier: {self.tier!r} is not a machine type of edition {self.edition.value}")
        return self


@dataclass(frozen=True)
class DatabaseContext:
    """What :class:`Database` takes besides its :class:`DatabaseConfig`.

    Attributes:
        project, region: where the instance lives.
        instance_name: Cloud SQL instance name. database_name: the application database.
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

    def __init__(self, name: str, config: DatabaseConfig, context: DatabaseContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.instance = gcp.sql.DatabaseInstance(
            "postgres",
            name=context.instance_name,
            project=context.project,
            region=context.region,
            database_version=DATABASE_VERSION,
            # Layer 2 of 3: the provider refuses to delete the instance.
            deletion_protection=context.protect,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                tier=config.tier,
                # Why explicit: POSTGRES_16 defaults to ENTERPRISE_PLUS, whose tiers differ.
                edition=config.edition.value,
                # REGIONAL = HA with a synchronous standby in another zone (prod).
                availability_type=config.availability.value,
                disk_type="PD_SSD",
                disk_size=config.disk_size_gb,
                disk_autoresize=True,
                # Layer 3 of 3: the Cloud SQL API refuses deletion from any client.
                deletion_protection_enabled=context.protect,
                # Why: a deleted protected instance still leaves its backups behind.
                retain_backups_on_delete=context.protect,
                backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    start_time=config.backup_start_time,
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
                    private_network=context.network_id,
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
                    day=config.maintenance_window.day,
                    hour=config.maintenance_window.hour,
                    update_track="stable",
                ),
                user_labels=dict(context.labels),
            ),
            # Layer 1 of 3: Pulumi refuses to delete or replace it.
            opts=pulumi.ResourceOptions(
                parent=self, protect=context.protect, depends_on=[context.private_service_access]
            ),
        )
        self.instance_name = self.instance.name
        self.connection_name = self.instance.connection_name
        self.private_ip_address = self.instance.private_ip_address

        self.database = gcp.sql.Database(
            "app",
            name=context.database_name,
            project=context.project,
            instance=self.instance.name,
            charset="UTF8",
            collation="en_US.UTF8",
            deletion_policy=ABANDON,
            opts=pulumi.ResourceOptions(parent=self, protect=context.protect),
        )
        self.database_name = context.database_name

        self.users: dict[str, gcp.sql.User] = {}
        self.user_names: dict[str, pulumi.Output[str]] = {}
        for service, email in sorted(context.service_account_emails.items()):
            user = gcp.sql.User(
                f"{service}-iam",
                project=context.project,
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
