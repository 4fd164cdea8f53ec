"""Hand-built offline preview documents (shape: docs/seams.md) shared by the plan-diff tests."""
from __future__ import annotations

from tools.plan_diff import SECRET

PREFIX = "urn:pulumi:prod::print-platform::"


def resource(type_: str, name: str, inputs: dict, *, protect: bool = False, provider: str = "") -> dict:
    return {
        "urn": f"{PREFIX}{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": "",
        "provider": provider,
        "protect": protect,
        "dependencies": [],
        "inputs": inputs,
    }


def document(*resources: dict, stack: str = "prod") -> dict:
    return {"stack": stack, "resources": list(resources), "outputs": {}}


DB = resource(
    "gcp:sql/databaseInstance:DatabaseInstance",
    "db",
    {
        "databaseVersion": "POSTGRES_16",
        "settings": {"tier": "db-custom-1-3840", "backupConfiguration": {"enabled": True}},
        "rootPassword": SECRET,
    },
    protect=True,
)
TOPIC = resource("gcp:pubsub/topic:Topic", "uploads", {"name": "uploads"})
RELEASE = resource(
    "kubernetes:helm.sh/v3:Release",
    "files-api",
    {"chart": "./charts/print-service", "values": {"image": {"tag": "1.0"}, "replicaCount": 2}},
)
ADDRESS = resource("gcp:compute/globalAddress:GlobalAddress", "lb-ip", {"name": "lb-ip"})
