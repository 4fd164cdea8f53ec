"""Structural JSON schemas of the custom resources the chart renders.

kubernetes-validate ships the schemas of the built-in kinds only. The CRDs
(Gateway API HTTPRoute, GKE HealthCheckPolicy / GCPBackendPolicy, GKE managed
Prometheus PodMonitoring) are checked against these schemas, written from the
upstream API types for the fields this chart uses, with
``additionalProperties: false`` so a misspelt field fails:

- HTTPRoute: Gateway API v1 (https://gateway-api.sigs.k8s.io/reference/spec/#httproute);
- HealthCheckPolicy, GCPBackendPolicy: networking.gke.io/v1
  (https://googlecloudplatform.github.io/gke-gateway-api/, types
  ``healthcheck_types.go`` and ``gcpbackendpolicy_types.go``);
- PodMonitoring: monitoring.googleapis.com/v1
  (https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed#gmp-pod-monitoring).

They are not the full CRD schemas (those are not available offline here).
"""
from __future__ import annotations

from typing import Any

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", "maxLength": 63}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object", "additionalProperties": False, "required": ["name", "namespace"],
    "properties": {"name": _NAME, "namespace": _NAME, "labels": _LABELS, "annotations": _LABELS},
}
_SERVICE_TARGET = {
    "type": "object", "additionalProperties": False, "required": ["group", "kind", "name"],
    "properties": {"group": {"const": ""}, "kind": {"const": "Service"}, "name": _NAME},
}


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": props, "required": required}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _obj({"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _METADATA, "spec": spec},
                ["apiVersion", "kind", "metadata", "spec"])


_INT = {"type": "integer"}

HTTPROUTE = _resource("gateway.networking.k8s.io/v1", "HTTPRoute", _obj({
    "parentRefs": {"type": "array", "minItems": 1, "maxItems": 32, "items": _obj({
        "group": {"const": "gateway.networking.k8s.io"}, "kind": {"const": "Gateway"}, "name": _NAME,
        "namespace": _NAME, "sectionName": _NAME, "port": _INT}, ["name"])},
    "hostnames": {"type": "array", "maxItems": 16, "items": {"type": "string", "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}},
    "rules": {"type": "array", "minItems": 1, "maxItems": 16, "items": _obj({
        "matches": {"type": "array", "items": _obj({"path": _obj({
            "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
            "value": {"type": "string", "pattern": "^/"}}, ["type", "value"])}, [])},
        "backendRefs": {"type": "array", "items": _obj({
            "group": {"const": ""}, "kind": {"const": "Service"}, "name": _NAME,
            "port": {"type": "integer", "minimum": 1, "maximum": 65535}, "weight": _INT}, ["name", "port"])},
    }, [])},
}, ["parentRefs", "rules"]))

HEALTHCHECKPOLICY = _resource("networking.gke.io/v1", "HealthCheckPolicy", _obj({
    "targetRef": _SERVICE_TARGET,
    "default": _obj({
        "checkIntervalSec": {"type": "integer", "minimum": 1, "maximum": 300},
        "timeoutSec": {"type": "integer", "minimum": 1, "maximum": 300},
        "healthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
        "unhealthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
        "logConfig": _obj({"enabled": {"type": "boolean"}}, []),
        "config": _obj({
            "type": {"const": "HTTP"},
            "httpHealthCheck": _obj({
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "portSpecification": {"enum": ["USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"]},
                "requestPath": {"type": "string", "pattern": r"^/[A-Za-z0-9/\-._~%!?$&'()*+,;=:]*$", "maxLength": 2048},
                "host": {"type": "string"}}, ["requestPath"]),
        }, ["type", "httpHealthCheck"]),
    }, ["config"]),
}, ["targetRef", "default"]))

GCPBACKENDPOLICY = _resource("networking.gke.io/v1", "GCPBackendPolicy", _obj({
    "targetRef": _SERVICE_TARGET,
    "default": _obj({
        "timeoutSec": {"type": "integer", "minimum": 1, "maximum": 2147483647},
        "connectionDraining": _obj({"drainingTimeoutSec": {"type": "integer", "minimum": 0, "maximum": 3600}}, []),
        "logging": _obj({"enabled": {"type": "boolean"},
                         "sampleRate": {"type": "integer", "minimum": 0, "maximum": 1000000}}, ["enabled"]),
        "securityPolicy": {"type": "string", "pattern": r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"},
        "iap": _obj({"enabled": {"type": "boolean"}, "clientID": {"type": "string", "minLength": 1},
                     "oauth2ClientSecret": _obj({"name": _NAME}, ["name"])}, ["enabled"]),
        "maxRatePerEndpoint": {"type": "integer", "minimum": 1},
    }, []),
}, ["targetRef", "default"]))

PODMONITORING = _resource("monitoring.googleapis.com/v1", "PodMonitoring", _obj({
    "selector": _obj({"matchLabels": _LABELS}, ["matchLabels"]),
    "endpoints": {"type": "array", "minItems": 1, "items": _obj({
        "port": {"type": ["string", "integer"]}, "path": {"type": "string", "pattern": "^/"},
        "interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
        "timeout": {"type": "string"}, "scheme": {"enum": ["http", "https"]}}, ["port"])},
}, ["selector", "endpoints"]))

#: kind -> schema, for every custom resource kind the chart may render.
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "HTTPRoute": HTTPROUTE,
    "HealthCheckPolicy": HEALTHCHECKPOLICY,
    "GCPBackendPolicy": GCPBACKENDPOLICY,
    "PodMonitoring": PODMONITORING,
}
