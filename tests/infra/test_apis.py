"""API enablement (infra/apis.py): one Service per API of the list, and every cloud resource
waits for the Service of the API it calls, checked on the offline preview document."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import apis
from infra.settings import StackSettings
from tools import preview
from tools.mock_runtime import Capture

ROOT = Path(__file__).resolve().parents[2]
SERVICE_TYPE = "gcp:projects/service:Service"
#: The issue's list (docs/infra.md): what a stack calls, IAP only when it is on.
REQUIRED = {
    "compute", "container", "sqladmin", "servicenetworking", "storage", "pubsub", "iam",
    "iamcredentials", "cloudresourcemanager", "serviceusage", "artifactregistry",
    "certificatemanager", "monitoring", "logging", "dns",
}


@pytest.fixture
def document(run: Capture) -> dict:
    """The offline preview JSON document of the stack, as `make -s preview FORMAT=json` prints it."""
    return json.loads(preview.render_json(run))


def _services(document: dict) -> dict[str, dict]:
    return {r["inputs"]["service"]: r for r in document["resources"] if r["type"] == SERVICE_TYPE}


def test_one_service_per_api_of_the_list_never_disabled_on_destroy(document: dict, settings: StackSettings):
    services = _services(document)
    expected = apis.platform_apis(settings.config.load_balancer.iap.enabled)
    assert sorted(services) == sorted(expected)
    assert {f"{short}.googleapis.com" for short in REQUIRED} <= set(services)
    assert ("iap.googleapis.com" in services) == settings.config.load_balancer.iap.enabled
    for name, service in services.items():
        assert service["inputs"]["project"] == settings.project, name
        assert service["inputs"]["disableOnDestroy"] is False, name
        assert service["inputs"]["disableDependentServices"] is False, name


def test_every_cloud_resource_depends_on_the_service_of_its_api(document: dict):
    services = _services(document)
    urns = {name: r["urn"] for name, r in services.items()}
    checked = 0
    for resource in document["resources"]:
        kind = resource["type"]
        if kind == "pulumi:pulumi:Stack" or kind.startswith("print-platform:"):
            continue  # the stack and the components call no API
        api = apis.api_for_type(kind)  # raises for a type missing from TYPE_APIS
        if api is None:
            assert kind.startswith("pulumi:providers:"), kind
            continue
        assert api in urns, f"{resource['urn']} calls {api}, which the stack does not enable"
        if resource["urn"] == urns[api]:
            continue  # Service Usage itself: enabled by the bootstrap program first
        assert urns[api] in resource["dependencies"], f"{resource['urn']} does not wait for {api}"
        checked += 1
    assert checked > 50


def test_services_wait_for_service_usage(document: dict):
    services = _services(document)
    usage = services[apis.SERVICE_USAGE]["urn"]
    for name, service in services.items():
        if name != apis.SERVICE_USAGE:
            assert usage in service["dependencies"], name


def test_an_unmapped_resource_type_is_an_error_naming_it():
    with pytest.raises(apis.UnmappedResourceType, match=r"'gcp:bigquery/dataset:Dataset'.*TYPE_APIS"):
        apis.api_for_type("gcp:bigquery/dataset:Dataset")
    assert apis.api_for_type("pulumi:providers:kubernetes") is None


@pytest.mark.parametrize(
    ("type_token", "api"),
    [
        ("gcp:billing/budget:Budget", "billingbudgets.googleapis.com"),
        ("docker-build:index:Image", "artifactregistry.googleapis.com"),
        ("gcp:iap/webBackendServiceIamMember:WebBackendServiceIamMember", "iap.googleapis.com"),
        ("gcp:iap/webIamMember:WebIamMember", "iap.googleapis.com"),
        ("kubernetes:helm.sh/v3:Release", "container.googleapis.com"),
        ("kubernetes:core/v1:Secret", "container.googleapis.com"),
        ("gcp:projects/iAMMember:IAMMember", "cloudresourcemanager.googleapis.com"),
        ("gcp:projects/serviceIdentity:ServiceIdentity", "serviceusage.googleapis.com"),
        ("gcp:servicenetworking/connection:Connection", "servicenetworking.googleapis.com"),
        ("gcp:sql/user:User", "sqladmin.googleapis.com"),
    ],
)
def test_types_added_by_other_components_are_mapped(type_token: str, api: str):
    """Types the budget, image build, IAP and release code register map to an API of the list."""
    assert apis.api_for_type(type_token) == api
    assert api in {a.name for a in apis.APIS}


def test_every_mapped_platform_api_is_in_the_list():
    listed = {a.name for a in apis.APIS}
    seed_only = {"cloudkms.googleapis.com"}  # the bootstrap program's seed project (infra/bootstrap)
    assert {api for _, api in apis.TYPE_APIS} - listed == seed_only


def test_roles_follow_from_the_list_and_are_never_basic():
    every = [a.name for a in apis.APIS]
    deploy = apis.deploy_roles(every)
    assert len(deploy) == len(set(deploy)) and list(deploy) == sorted(deploy)
    assert not {"roles/owner", "roles/editor", "roles/viewer"} & (set(deploy) | set(apis.preview_roles(every)))
    assert "roles/iap.admin" in deploy and "roles/iap.admin" not in apis.deploy_roles(apis.platform_apis(False))
    for role in apis.preview_roles(every):
        assert re.search(r"(viewer|Viewer|reader|Reviewer)$", role), f"{role} is not read-only"
    assert apis.before_program_apis() == (
        "serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "iam.googleapis.com"
    )


def test_docs_name_every_api_of_the_list():
    text = (ROOT / "docs" / "infra.md").read_text()
    for api in apis.APIS:
        assert f"`{api.name}`" in text, f"docs/infra.md does not list {api.name}"
