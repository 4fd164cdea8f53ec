"""The platform stacks' state backend: a hardened GCS bucket and Cloud KMS keys for stack secrets.

Each platform stack keeps its state under its own prefix (``pulumi login
gs://<bucket>/<stack>``), so its CI identities can be limited to that prefix by an IAM
condition, and encrypts its secrets with its own key (``--secrets-provider
gcpkms://.../cryptoKeys/<stack>-secrets``).

Sources: https://www.pulumi.com/docs/iac/concepts/state-and-backends/#google-cloud-storage,
https://www.pulumi.com/docs/iac/concepts/secrets/#configuring-secrets-encryption (gcpkms://),
https://cloud.google.com/kms/docs/key-rotation (rotation period >= 1 day),
https://cloud.google.com/storage/docs/public-access-prevention.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp

from infra.storage import private_versioned_bucket

#: Seconds per day (KMS rotation period, destroy delay).
DAY = 24 * 3600
#: A destroyed key version stays restorable this long (the KMS maximum is 120 days).
KEY_DESTROY_DELAY_DAYS = 30


@dataclass(frozen=True)
class StateBackendArgs:
    """Inputs of :class:`StateBackend`.

    Attributes:
        project, location: the seed project and the region of bucket and key ring.
        bucket_name: the state bucket. noncurrent_version_retention_days: how long an
            overwritten state version is kept.
        key_ring: key ring name. keys: ``{stack: key name}``.
        rotation_period_days: key rotation period. labels: bucket and key labels.
    """

    project: str
    location: str
    bucket_name: str
    noncurrent_version_retention_days: int
    key_ring: str
    keys: Mapping[str, str]
    rotation_period_days: int
    labels: Mapping[str, str] = field(default_factory=dict)


class StateBackend(pulumi.ComponentResource):
    """State bucket and secrets keys, all protected (losing either loses every stack).

    Attributes:
        bucket: the ``storage.Bucket``. key_ring: the ``kms.KeyRing``.
        keys: ``{stack: kms.CryptoKey}``.
        backend_urls: ``{stack: "gs://<bucket>/<stack>"}`` (Output[str]), for ``pulumi login``.
        secrets_providers: ``{stack: "gcpkms://projects/.../cryptoKeys/<key>"}`` (Output[str]).
    """

    def __init__(self, name: str, args: StateBackendArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform-bootstrap:state:StateBackend", name, None, opts)
        # Why protect: the bucket holds every stack's state and the keys decrypt every
        # stack's secrets; neither may go with a stray `pulumi destroy`.
        kept = pulumi.ResourceOptions(parent=self, protect=True)
        # Why versioning: every state write is a new generation; a corrupted or wrongly
        # edited state is restored from the previous one. Uniform access: the per-stack
        # prefix conditions need IAM only.
        self.bucket = private_versioned_bucket(
            "state", bucket_name=args.bucket_name, project=args.project, location=args.location,
            noncurrent_version_retention_days=args.noncurrent_version_retention_days,
            force_destroy=False, labels=args.labels, opts=kept,
        )
        self.key_ring = gcp.kms.KeyRing("secrets", name=args.key_ring, project=args.project,
                                        location=args.location, opts=kept)
        self.keys: dict[str, gcp.kms.CryptoKey] = {}
        for stack, key in sorted(args.keys.items()):
            self.keys[stack] = gcp.kms.CryptoKey(
                key,
                name=key,
                key_ring=self.key_ring.id,
                purpose="ENCRYPT_DECRYPT",
                # Why rotation: a new primary version this often limits what one leaked
                # version decrypts; old versions keep decrypting existing secrets.
                rotation_period=f"{args.rotation_period_days * DAY}s",
                destroy_scheduled_duration=f"{KEY_DESTROY_DELAY_DAYS * DAY}s",
                version_template=gcp.kms.CryptoKeyVersionTemplateArgs(
                    algorithm="GOOGLE_SYMMETRIC_ENCRYPTION", protection_level="SOFTWARE"
                ),
                labels=dict(args.labels),
                opts=kept,
            )
        self.backend_urls = {
            stack: pulumi.Output.concat("gs://", self.bucket.name, "/", stack) for stack in sorted(args.keys)
        }
        self.secrets_providers = {
            stack: pulumi.Output.concat("gcpkms://", key.id) for stack, key in self.keys.items()
        }
        self.register_outputs({"bucket": self.bucket.name, "backend_urls": self.backend_urls})
