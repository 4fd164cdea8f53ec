"""The workloads of the platform and their identities: one place, imported by the stack
settings and the components alike (a leaf module: it imports no other ``infra`` module)."""
from __future__ import annotations

#: The services deployed on the platform; each gets a Google service account,
#: a Kubernetes service account and an IAM database user.
SERVICES: tuple[str, ...] = ("files-api", "extractor")
#: The reconciler (``extractor-reconcile``, CronJobs of the extractor release) is no service of
#: its own but has its own identity: a Google service account, the Kubernetes ServiceAccount
#: ``extractor-reconciler`` (the chart's ``<fullname>-reconciler``) and an IAM database user.
RECONCILER = "reconciler"
RECONCILER_KSA = "extractor-reconciler"
