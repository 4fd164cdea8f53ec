"""The public edge: a global external Application Load Balancer driven by the GKE Gateway API.

What this component provisions (one per stack):

- ``gcp.compute.GlobalAddress``: the static, global, external IPv4 address the
  Gateway uses (``spec.addresses`` of type ``NamedAddress``). Operators point the
  domain's DNS ``A`` record at it.
- Certificate Manager: a Google-managed ``Certificate`` for the domain,
  authorised by the load balancer itself (the default when no DNS authorization
  is given: the certificate is issued once the ``A`` record resolves to the
  address), a ``CertificateMap`` and a ``CertificateMapEntry`` for the hostname.
  The Gateway references the map by its annotation ``networking.gke.io/certmap``.
- ``gcp.compute.SSLPolicy``: profile ``MODERN`` or ``RESTRICTED`` with a minimum
  of TLS 1.2, attached to the Gateway's target HTTPS proxy by a
  ``GCPGatewayPolicy``.
- ``gcp.compute.SecurityPolicy`` (Cloud Armor, type ``CLOUD_ARMOR``): preconfigured
  WAF rules (``sqli-v33-stable``, ``xss-v33-stable``) at a configured sensitivity,
  a per-client-IP ``rate_based_ban`` rule, a default ``allow`` rule and, when
  enabled, Adaptive Protection (layer 7 DDoS defense). The chart attaches it to
  the files-api backend with a ``GCPBackendPolicy`` (it needs the policy *name*).
- Kubernetes objects through the provider given in the args:
  the ``Gateway`` (class ``gke-l7-global-external-managed``) with an ``https``
  listener on 443 and an ``http`` listener on 80, the ``GCPGatewayPolicy``, and
  an ``HTTPRoute`` bound to the ``http`` listener only that answers every request
  with a ``301`` redirect to ``https``. The files-api's own ``HTTPRoute`` (bound
  to the ``https`` listener), ``GCPBackendPolicy`` and ``HealthCheckPolicy`` are
  rendered by the Helm chart, from the attributes this component exposes.

Why Gateway API rather than Ingress + BackendConfig: see docs/edge.md.

Sources: GKE Gateway API docs (https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways,
.../configure-gateway-resources, .../secure-gateway), Certificate Manager
(https://cloud.google.com/certificate-manager/docs/deploy-google-managed-lb-auth),
Cloud Armor (https://cloud.google.com/armor/docs/waf-rules, .../rate-limiting-overview),
SSL policies (https://cloud.google.com/load-balancing/docs/ssl-policies-concepts).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

# --- Facts taken from vendor documentation (one place each) -------------------

#: The GatewayClass of the global external Application Load Balancer on GKE
#: (https://cloud.google.com/kubernetes-engine/docs/concepts/gateway-api#gatewayclass).
GATEWAY_CLASS = "gke-l7-global-external-managed"
#: Gateway API group/version served by GKE's CHANNEL_STANDARD.
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
#: GKE's policy CRDs (GCPGatewayPolicy, GCPBackendPolicy, HealthCheckPolicy).
GKE_POLICY_API_VERSION = "networking.gke.io/v1"
#: Gateway annotation naming the Certificate Manager map
#: (https://cloud.google.com/kubernetes-engine/docs/how-to/secure-gateway#secure-using-certificate-manager).
CERTMAP_ANNOTATION = "networking.gke.io/certmap"
#: Listener names (``sectionName`` in routes). The chart binds files-api to HTTPS_LISTENER.
HTTPS_LISTENER = "https"
HTTP_LISTENER = "http"
#: Cloud Armor preconfigured WAF rule sets (ModSecurity CRS 3.3 based,
#: https://cloud.google.com/armor/docs/waf-rules).
WAF_RULE_SETS = ("sqli-v33-stable", "xss-v33-stable")
#: Priority of the mandatory default rule (https://cloud.google.com/armor/docs/security-policy-overview#rule-evaluation-order).
DEFAULT_RULE_PRIORITY = 2147483647
#: ``rateLimitThreshold.intervalSec`` values Cloud Armor accepts
#: (https://cloud.google.com/armor/docs/rate-limiting-overview#rate-limit-thresholds).
ARMOR_INTERVALS_SEC = (10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600)
#: Preconfigured WAF sensitivity levels that enable rules (0 enables none; 1 is the
#: least false-positive prone, 4 the most aggressive).
WAF_SENSITIVITIES = (1, 2, 3, 4)
#: SSL policy profiles that, with ``min_tls_version=TLS_1_2``, exclude weak ciphers.
SSL_PROFILES = ("MODERN", "RESTRICTED")
MIN_TLS_VERSION = "TLS_1_2"

# Compute Engine resource names (RFC 1035 label, at most 63 characters).
_GCE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# A fully qualified DNS host name, no wildcard, no trailing dot, lower case.
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Kubernetes object names / namespace (RFC 1123 label).
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Longest suffix the component appends to ``name_prefix`` ("-certmap-entry").
_LONGEST_SUFFIX = len("-certmap-entry")


class LoadBalancerArgsError(ValueError):
    """Raised when an Args value is malformed; the message names the field and the value."""


def _check(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise LoadBalancerArgsError(f"loadbalancer: {field_name}: {message}")


@dataclass(frozen=True)
class CloudArmorArgs:
    """Cloud Armor settings for the files-api backend.

    Attributes:
        rate_limit_requests: requests one client IP may send per
            ``rate_limit_interval_sec`` before it is banned (positive int).
        rate_limit_interval_sec: the window of the rate limit, seconds; one of
            ``ARMOR_INTERVALS_SEC`` (Cloud Armor's accepted values).
        ban_duration_sec: how long an offending IP stays banned once the rate falls
            back under the threshold, seconds (1..86400).
        waf_sensitivity: preconfigured WAF sensitivity level, 1..4 (1 = fewest
            false positives; https://cloud.google.com/armor/docs/waf-rules).
        waf_preview: when True the WAF rules only log (``preview``) instead of
            denying; for tuning a new stack, never the default.
        adaptive_protection: enable Adaptive Protection's layer 7 DDoS defense
            (https://cloud.google.com/armor/docs/adaptive-protection-overview).

    Raises:
        LoadBalancerArgsError: any value outside the ranges above.
    """

    rate_limit_requests: int
    rate_limit_interval_sec: int
    ban_duration_sec: int
    waf_sensitivity: int = 1
    waf_preview: bool = False
    adaptive_protection: bool = True

    def __post_init__(self) -> None:
        _check(isinstance(self.rate_limit_requests, int) and self.rate_limit_requests > 0,
               "armor.rate_limit_requests", f"must be a positive integer, got {self.rate_limit_requests!r}")
        _check(self.rate_limit_interval_sec in ARMOR_INTERVALS_SEC, "armor.rate_limit_interval_sec",
               f"must be one of {ARMOR_INTERVALS_SEC}, got {self.rate_limit_interval_sec!r}")
        _check(isinstance(self.ban_duration_sec, int) and 1 <= self.ban_duration_sec <= 86400,
               "armor.ban_duration_sec", f"must be an integer in 1..86400 seconds, got {self.ban_duration_sec!r}")
        _check(self.waf_sensitivity in WAF_SENSITIVITIES, "armor.waf_sensitivity",
               f"must be one of {WAF_SENSITIVITIES}, got {self.waf_sensitivity!r}")


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Inputs of :class:`LoadBalancer`.

    Attributes:
        name_prefix: prefix of every Google Cloud resource name (e.g.
            ``print-platform-dev``); a lower-case RFC 1035 label short enough
            that ``<prefix>-certmap-entry`` fits 63 characters.
        domain: the public host name served over HTTPS (e.g. ``files.example.com``),
            lower case, no wildcard, no trailing dot. The managed certificate is
            issued for it and the URL output is ``https://<domain>``.
        namespace: Kubernetes namespace of the Gateway and its redirect route (the
            stack's namespace; pass the Namespace resource's ``metadata.name`` so
            the objects wait for it). The files-api HTTPRoute lives in the same
            namespace, so the listeners' default ``allowedRoutes: Same`` suffices.
        k8s_provider: the Kubernetes provider of the stack's GKE cluster.
        armor: Cloud Armor settings (:class:`CloudArmorArgs`).
        project: project id (defaults to the provider's project).
        gateway_name: name of the Gateway object (RFC 1123 label).
        ssl_profile: ``MODERN`` (default) or ``RESTRICTED``; TLS >= 1.2 either way.
        labels: Google Cloud labels for the resources that take labels.

    Raises:
        LoadBalancerArgsError: a malformed value, naming the field.
    """

    name_prefix: str
    domain: str
    namespace: pulumi.Input[str]
    k8s_provider: pulumi.ProviderResource
    armor: CloudArmorArgs
    project: Optional[pulumi.Input[str]] = None
    gateway_name: str = "external"
    ssl_profile: str = "MODERN"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(isinstance(self.name_prefix, str) and bool(_GCE_NAME.match(self.name_prefix))
               and len(self.name_prefix) + _LONGEST_SUFFIX <= 63, "name_prefix",
               f"must be a lower-case RFC 1035 label of at most {63 - _LONGEST_SUFFIX} characters, got {self.name_prefix!r}")
        _check(isinstance(self.domain, str) and bool(_DOMAIN.match(self.domain)), "domain",
               f"must be a lower-case fully qualified host name without wildcard or trailing dot, got {self.domain!r}")
        _check(isinstance(self.gateway_name, str) and bool(_K8S_NAME.match(self.gateway_name)), "gateway_name",
               f"must be an RFC 1123 label, got {self.gateway_name!r}")
        if isinstance(self.namespace, str):
            _check(bool(_K8S_NAME.match(self.namespace)), "namespace",
                   f"must be an RFC 1123 label, got {self.namespace!r}")
        _check(self.ssl_profile in SSL_PROFILES, "ssl_profile",
               f"must be one of {SSL_PROFILES}, got {self.ssl_profile!r}")
        _check(isinstance(self.armor, CloudArmorArgs), "armor",
               f"must be a CloudArmorArgs, got {type(self.armor).__name__}")
        _check(isinstance(self.k8s_provider, pulumi.ProviderResource), "k8s_provider",
               f"must be a pulumi ProviderResource, got {type(self.k8s_provider).__name__}")


class LoadBalancer(pulumi.ComponentResource):
    """Static IP, managed certificate, SSL policy, Cloud Armor and the GKE Gateway.

    Attributes (for the Helm releases and the stack outputs):
        address: the ``GlobalAddress`` resource; ``ip_address`` its IP (Output[str]).
        url: ``https://<domain>`` (str).
        domain: the served host name (str).
        gateway_name, gateway_namespace: the Gateway the files-api HTTPRoute
            attaches to (str, Output[str]).
        https_section_name: the listener (``sectionName``) for application routes.
        armor_policy_name: name of the Cloud Armor policy, for the chart's
            ``GCPBackendPolicy`` ``securityPolicy`` (Output[str]).
        ssl_policy_name, certificate_map_name: names of those resources (Output[str]).
        url_map_name_regex: RE2 regex matching the URL map GKE generates for the
            Gateway (``gkegw1-<hash>-<namespace>-<gateway>-<hash>``), for filtering
            ``loadbalancing.googleapis.com`` metrics (Output[str]).
    """

    def __init__(self, name: str, args: LoadBalancerArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:edge:LoadBalancer", name, None, opts)
        raise NotImplementedError("LoadBalancer resources land in the next commit")
