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

- Identity-Aware Proxy access, when IAP is on: ``roles/iap.httpsResourceAccessor``
  for each configured member on the project's IAP compute web type
  (``gcp.iap.WebTypeComputeIamMember``), with an IAM condition on
  ``request.host`` = the stack's domain. The narrowest scope one ``pulumi up``
  can grant: the backend service itself (``WebBackendServiceIamMember``) is
  named and created by the GKE Gateway controller only after the release is
  applied, so the program cannot reference it; the host condition confines
  the grant to this stack's app all the same. ``iap_audience`` is the JWT
  audience files-api verifies (``/projects/<number>/global/backendServices/*``,
  docs/edge.md "IAP").

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
from typing import Any, Literal, Mapping, Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pydantic import Field, SecretStr, field_validator, model_validator

from infra.config import EMAIL_PATTERN, HOSTNAME_PATTERN, ConfigModel, not_bool

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
#: Largest ``rateLimitThreshold.count`` of a rate-based ban rule (same page: 1..10,000).
ARMOR_BAN_MAX_REQUESTS = 10_000
#: Preconfigured WAF sensitivity levels that enable rules (0 enables none; 1 is the
#: least false-positive prone, 4 the most aggressive).
WAF_SENSITIVITIES = (1, 2, 3, 4)
#: SSL policy profiles that, with ``min_tls_version=TLS_1_2``, exclude weak ciphers.
SSL_PROFILES = ("MODERN", "RESTRICTED")
MIN_TLS_VERSION = "TLS_1_2"
#: The role that lets a principal through IAP to a web backend
#: (https://cloud.google.com/iap/docs/managing-access#roles).
IAP_ACCESSOR_ROLE = "roles/iap.httpsResourceAccessor"

# Compute Engine resource names (RFC 1035 label, at most 63 characters).
_GCE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# A fully qualified DNS host name, no wildcard, no trailing dot, lower case (the stack
# config's rule, :class:`LoadBalancerConfig`).
_DOMAIN = HOSTNAME_PATTERN
# Kubernetes object names / namespace (RFC 1123 label).
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Longest suffix the component appends to ``name_prefix`` ("-certmap-entry").
_LONGEST_SUFFIX = len("-certmap-entry")


class LoadBalancerArgsError(ValueError):
    """Raised when an Args value is malformed; the message names the field and the value."""


def _check(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise LoadBalancerArgsError(f"loadbalancer: {field_name}: {message}")


#: IAM principals IAP may admit (https://cloud.google.com/iam/docs/principal-identifiers):
#: ``group:``, ``user:`` and ``serviceAccount:`` followed by an e-mail address. No
#: ``domain:``, ``allUsers`` or ``allAuthenticatedUsers``: whoever uses the app is named.
IAP_MEMBER_KINDS = ("group", "user", "serviceAccount")


class ArmorConfig(ConfigModel):
    """``print-platform:loadBalancer.armor``: Cloud Armor for the files-api backend.

    Attributes:
        rate_limit_requests: requests one client IP may send per
            ``rate_limit_interval_sec`` before it is banned (1..10,000, Cloud Armor's
            range for rate-based bans).
        rate_limit_interval_sec: the window of the rate limit, seconds; one of
            ``ARMOR_INTERVALS_SEC`` (Cloud Armor's accepted values).
        ban_duration_sec: how long an offending IP stays banned once the rate falls
            back under the threshold, seconds (1..86400; the one-day cap is this
            project's sanity bound, Cloud Armor documents none).
        waf_sensitivity: preconfigured WAF sensitivity level, 1..4 (1 = fewest
            false positives; https://cloud.google.com/armor/docs/waf-rules).
        waf_preview: when True the WAF rules only log (``preview``) instead of
            denying; for tuning a new stack, never the default.
        adaptive_protection: enable Adaptive Protection's layer 7 DDoS defense
            (https://cloud.google.com/armor/docs/adaptive-protection-overview).

    Raises:
        pydantic.ValidationError: any value outside the ranges above.
    """

    rate_limit_requests: int = Field(description=f"1–{ARMOR_BAN_MAX_REQUESTS} per client IP and interval")
    rate_limit_interval_sec: int = Field(description=f"one of {ARMOR_INTERVALS_SEC}")
    ban_duration_sec: int = Field(description="1–86400 s")
    waf_sensitivity: int = Field(default=1, description=f"one of {WAF_SENSITIVITIES}")
    waf_preview: bool = Field(default=False, description="WAF rules only log instead of denying")
    adaptive_protection: bool = True

    _not_bool = field_validator("rate_limit_requests", "rate_limit_interval_sec", "ban_duration_sec",
                                "waf_sensitivity", mode="before")(not_bool)

    @field_validator("rate_limit_requests")
    @classmethod
    def _requests(cls, v: int) -> int:
        if not 1 <= v <= ARMOR_BAN_MAX_REQUESTS:
            raise ValueError(f"must be an integer in 1..{ARMOR_BAN_MAX_REQUESTS}, got {v!r}")
        return v

    @field_validator("rate_limit_interval_sec")
    @classmethod
    def _interval(cls, v: int) -> int:
        if v not in ARMOR_INTERVALS_SEC:
            raise ValueError(f"must be one of {ARMOR_INTERVALS_SEC}, got {v!r}")
        return v

    @field_validator("ban_duration_sec")
    @classmethod
    def _ban(cls, v: int) -> int:
        if not 1 <= v <= 86400:
            raise ValueError(f"must be an integer in 1..86400 seconds, got {v!r}")
        return v

    @field_validator("waf_sensitivity")
    @classmethod
    def _sensitivity(cls, v: int) -> int:
        if v not in WAF_SENSITIVITIES:
            raise ValueError(f"must be one of {WAF_SENSITIVITIES}, got {v!r}")
        return v


class IapConfig(ConfigModel):
    """``print-platform:loadBalancer.iap``: who may pass Identity-Aware Proxy, and with which OAuth client.

    Attributes:
        enabled: IAP on the files-api backend.
        members: IAM principals granted ``roles/iap.httpsResourceAccessor``
            (``group:<email>``, ``user:<email>``, ``serviceAccount:<email>``);
            required (non-empty) when ``enabled``, distinct.
        oauth_client_id / oauth_client_secret (secret): a custom OAuth client,
            set together or not at all; without them IAP uses its
            Google-managed client, which admits browsers only (programmatic
            clients need a custom client, docs/edge.md).
    """

    enabled: bool = False
    members: list[str] = Field(default_factory=list, description="`group:`/`user:`/`serviceAccount:<email>`, distinct; "
                               "required when `enabled`")
    oauth_client_id: Optional[str] = Field(default=None, description="with `oauthClientSecret`, or neither")
    oauth_client_secret: Optional[SecretStr] = None

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str]) -> list[str]:
        for index, member in enumerate(v):
            kind, _, email = member.partition(":") if isinstance(member, str) else ("", "", "")
            if kind not in IAP_MEMBER_KINDS or not EMAIL_PATTERN.match(email):
                raise ValueError(
                    f"[{index}] {member!r} is not an IAM principal "
                    f"{' | '.join(k + ':<email>' for k in IAP_MEMBER_KINDS)}")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate members in {v}")
        return v

    @model_validator(mode="after")
    def _pair(self) -> "IapConfig":
        if (self.oauth_client_id is None) != (self.oauth_client_secret is None):
            raise ValueError("oauthClientSecret: oauthClientId and oauthClientSecret must be set together")
        # Why: IAP on with nobody granted roles/iap.httpsResourceAccessor locks everyone out.
        if self.enabled and not self.members:
            raise ValueError("members: required when IAP is enabled (who may use the app: "
                             "group:<email>, user:<email> or serviceAccount:<email>)")
        return self


class LoadBalancerConfig(ConfigModel):
    """``print-platform:loadBalancer``: ``domain`` (FQDN served over HTTPS), ``sslProfile``
    (``MODERN`` | ``RESTRICTED``), ``iap`` (:class:`IapConfig`), ``armor`` (:class:`ArmorConfig`)."""

    domain: str = Field(description="lower-case fully qualified host name")
    ssl_profile: Literal[SSL_PROFILES] = "MODERN"
    iap: IapConfig = IapConfig()
    armor: ArmorConfig

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not HOSTNAME_PATTERN.match(v):
            raise ValueError(f"{v!r} is not a lower-case fully qualified host name")
        return v


@dataclass(frozen=True)
class LoadBalancerContext:
    """What :class:`LoadBalancer` takes besides its :class:`LoadBalancerConfig`.

    Attributes:
        name_prefix: prefix of every Google Cloud resource name (e.g.
            ``print-platform-dev``); a lower-case RFC 1035 label short enough
            that ``<prefix>-certmap-entry`` fits 63 characters.
        namespace: Kubernetes namespace of the Gateway and its redirect route (the
            stack's namespace; pass the Namespace resource's ``metadata.name`` so
            the objects wait for it). The files-api HTTPRoute lives in the same
            namespace, so the listeners' default ``allowedRoutes: Same`` suffices.
        k8s_provider: the Kubernetes provider of the stack's GKE cluster.
        project: project id (defaults to the provider's project).
        gateway_name: name of the Gateway object (RFC 1123 label).
        labels: Google Cloud labels for the resources that take labels.

    Raises:
        LoadBalancerArgsError: a malformed value, naming the field.
    """

    name_prefix: str
    namespace: pulumi.Input[str]
    k8s_provider: pulumi.ProviderResource
    project: Optional[pulumi.Input[str]] = None
    gateway_name: str = "external"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(isinstance(self.name_prefix, str) and bool(_GCE_NAME.match(self.name_prefix))
               and len(self.name_prefix) + _LONGEST_SUFFIX <= 63, "name_prefix",
               f"must be a lower-case RFC 1035 label of at most {63 - _LONGEST_SUFFIX} characters, got {self.name_prefix!r}")
        _check(isinstance(self.gateway_name, str) and bool(_K8S_NAME.match(self.gateway_name)), "gateway_name",
               f"must be an RFC 1123 label, got {self.gateway_name!r}")
        if isinstance(self.namespace, str):
            _check(bool(_K8S_NAME.match(self.namespace)), "namespace",
                   f"must be an RFC 1123 label, got {self.namespace!r}")
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
        iap_access: member -> its ``gcp.iap.WebTypeComputeIamMember`` (empty without IAP).
        iap_audience: the IAP JWT audience of this project's global backend
            services, ``/projects/<project number>/global/backendServices/*``
            (Output[str]), or None without IAP.
    """

    def __init__(self, name: str, config: LoadBalancerConfig, context: LoadBalancerContext,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:edge:LoadBalancer", name, None, opts)
        # IAP members while IAP is on; members listed while it is off grant nothing.
        iap_members = tuple(config.iap.members) if config.iap.enabled else ()
        gcp_opts = pulumi.ResourceOptions(parent=self)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=context.k8s_provider)
        prefix = context.name_prefix
        labels = dict(context.labels)

        self.domain = config.domain
        self.url = f"https://{config.domain}"
        self.gateway_name = context.gateway_name
        self.gateway_namespace = pulumi.Output.from_input(context.namespace)
        self.https_section_name = HTTPS_LISTENER

        # The static IP: global, external, IPv4 (the Gateway names it in spec.addresses).
        self.address = gcp.compute.GlobalAddress(
            "address",
            name=f"{prefix}-ip",
            project=context.project,
            address_type="EXTERNAL",
            ip_version="IPV4",
            description=f"Static IP of the public Gateway serving {config.domain}",
            labels=labels,
            opts=gcp_opts,
        )
        self.ip_address = self.address.address

        # Google-managed certificate, load-balancer authorised (no dns_authorizations):
        # issued once the domain's A record resolves to the address above.
        self.certificate = gcp.certificatemanager.Certificate(
            "certificate",
            name=f"{prefix}-cert",
            project=context.project,
            scope="DEFAULT",
            description=f"Google-managed certificate for {config.domain}",
            managed=gcp.certificatemanager.CertificateManagedArgs(domains=[config.domain]),
            labels=labels,
            opts=gcp_opts,
        )
        self.certificate_map = gcp.certificatemanager.CertificateMap(
            "certificate-map",
            name=f"{prefix}-certmap",
            project=context.project,
            description=f"Certificates served by the public Gateway ({config.domain})",
            labels=labels,
            opts=gcp_opts,
        )
        self.certificate_map_entry = gcp.certificatemanager.CertificateMapEntry(
            "certificate-map-entry",
            name=f"{prefix}-certmap-entry",
            project=context.project,
            map=self.certificate_map.name,
            hostname=config.domain,
            certificates=[self.certificate.id],
            labels=labels,
            opts=gcp_opts,
        )
        self.certificate_map_name = self.certificate_map.name

        # TLS >= 1.2 with a profile that excludes the legacy cipher suites.
        self.ssl_policy = gcp.compute.SSLPolicy(
            "ssl-policy",
            name=f"{prefix}-ssl",
            project=context.project,
            profile=config.ssl_profile,
            min_tls_version=MIN_TLS_VERSION,
            description="TLS 1.2+ for the public Gateway",
            opts=gcp_opts,
        )
        self.ssl_policy_name = self.ssl_policy.name

        self.armor_policy = gcp.compute.SecurityPolicy(
            "armor",
            name=f"{prefix}-armor",
            project=context.project,
            type="CLOUD_ARMOR",
            description="Cloud Armor for the files-api backend: OWASP sqli/xss rules, per-IP rate-based ban",
            rules=armor_rules(config.armor),
            adaptive_protection_config=gcp.compute.SecurityPolicyAdaptiveProtectionConfigArgs(
                layer7_ddos_defense_config=gcp.compute.SecurityPolicyAdaptiveProtectionConfigLayer7DdosDefenseConfigArgs(
                    enable=True, rule_visibility="STANDARD"),
            ) if config.armor.adaptive_protection else None,
            # JSON bodies are parsed so the WAF rules inspect their values, not the raw text
            # (https://cloud.google.com/armor/docs/security-policy-overview#json-parsing).
            advanced_options_config=gcp.compute.SecurityPolicyAdvancedOptionsConfigArgs(
                json_parsing="STANDARD", log_level="NORMAL"),
            labels=labels,
            opts=gcp_opts,
        )
        self.armor_policy_name = self.armor_policy.name

        self.gateway = k8s.apiextensions.CustomResource(
            "gateway",
            api_version=GATEWAY_API_VERSION,
            kind="Gateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=context.gateway_name,
                namespace=context.namespace,
                annotations={CERTMAP_ANNOTATION: self.certificate_map.name},
            ),
            spec=gateway_spec(self.address.name),
            # The map must hold the entry before the load balancer's HTTPS proxy uses it.
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[self.certificate_map_entry])),
        )
        self.gateway_policy = k8s.apiextensions.CustomResource(
            "gateway-policy",
            api_version=GKE_POLICY_API_VERSION,
            kind="GCPGatewayPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{context.gateway_name}-tls", namespace=context.namespace),
            spec={
                "default": {"sslPolicy": self.ssl_policy.name},
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": context.gateway_name},
            },
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[self.gateway])),
        )
        self.http_redirect_route = k8s.apiextensions.CustomResource(
            "http-redirect",
            api_version=GATEWAY_API_VERSION,
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{context.gateway_name}-http-redirect", namespace=context.namespace),
            spec=http_redirect_route_spec(context.gateway_name),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[self.gateway])),
        )

        self.url_map_name_regex = pulumi.Output.from_input(context.namespace).apply(
            lambda ns: url_map_name_regex(ns, context.gateway_name))

        # IAP access: who may pass IAP, confined to this stack's host (module docstring says
        # why the compute web type and not the backend service the Gateway controller creates).
        self.iap_access: dict[str, gcp.iap.WebTypeComputeIamMember] = {}
        self.iap_audience: Optional[pulumi.Output[str]] = None
        if iap_members:
            for member in iap_members:
                self.iap_access[member] = gcp.iap.WebTypeComputeIamMember(
                    f"iap-accessor-{_member_key(member)}",
                    project=context.project,
                    role=IAP_ACCESSOR_ROLE,
                    member=member,
                    condition=gcp.iap.WebTypeComputeIamMemberConditionArgs(
                        title=f"only {config.domain}"[:100],
                        description="IAP access to this stack's app only (its host name)",
                        expression=iap_host_condition(config.domain),
                    ),
                    opts=gcp_opts,
                )
            project = gcp.organizations.get_project_output(project_id=context.project)
            self.iap_audience = project.number.apply(iap_audience_pattern)

        self.register_outputs({
            "ip_address": self.ip_address,
            "url": self.url,
            "domain": self.domain,
            "gateway_name": self.gateway_name,
            "gateway_namespace": self.gateway_namespace,
            "https_section_name": self.https_section_name,
            "armor_policy_name": self.armor_policy_name,
            "ssl_policy_name": self.ssl_policy_name,
            "certificate_map_name": self.certificate_map_name,
        })


def iap_host_condition(domain: str) -> str:
    """The CEL expression of the IAP grants: ``request.host == "<domain>"``.

    Source: https://cloud.google.com/iap/docs/cloud-iap-context-aware-access-howto
    (IAM conditions on IAP resources may test ``request.host``; IAP normalises
    the host to lower case without a trailing dot, as the domain is validated).
    """
    _check(isinstance(domain, str) and bool(_DOMAIN.match(domain)), "domain", f"not a host name: {domain!r}")
    return f'request.host == "{domain}"'


def iap_audience_pattern(project_number: Any) -> str:
    """``/projects/<number>/global/backendServices/*``: the audience files-api accepts (``IAP_AUDIENCE``).

    IAP signs ``aud = /projects/<number>/global/backendServices/<backend id>``
    (https://cloud.google.com/iap/docs/signed-headers-howto); the id exists only
    once the Gateway controller created the backend, so the stack binds the
    project and files-api checks the rest of the form (docs/edge.md "IAP").
    """
    number = str(project_number)
    _check(number.isdigit(), "project_number", f"must be the numeric project number, got {project_number!r}")
    return f"/projects/{number}/global/backendServices/*"


def _member_key(member: str) -> str:
    """A stable, URN-safe resource name part for an IAM member (``user:ada@x.org`` -> ``user-ada-at-x-org``)."""
    return re.sub(r"[^a-z0-9]+", "-", member.lower().replace("@", "-at-")).strip("-")


def armor_rules(armor: ArmorConfig) -> list[gcp.compute.SecurityPolicyRuleArgs]:
    """The Cloud Armor rules, evaluated in ascending priority.

    - 1000, 1001: ``deny(403)`` on ``evaluatePreconfiguredWaf('<set>', {'sensitivity': N})``
      for each of ``WAF_RULE_SETS`` (``preview`` when ``armor.waf_preview``);
    - 2000: ``rate_based_ban`` on every source IP (``SRC_IPS_V1`` ``*``): more than
      ``rate_limit_requests`` per ``rate_limit_interval_sec`` from one IP
      (``enforce_on_key=IP``) is answered ``429`` and the IP is banned for
      ``ban_duration_sec``;
    - 2147483647: the mandatory default rule, ``allow``.

    Returns a list of ``SecurityPolicyRuleArgs``.
    """
    every_ip = gcp.compute.SecurityPolicyRuleMatchArgs(
        versioned_expr="SRC_IPS_V1",
        config=gcp.compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=["*"]),
    )
    rules = [
        gcp.compute.SecurityPolicyRuleArgs(
            priority=1000 + i,
            action="deny(403)",
            description=f"OWASP CRS {rule_set}",
            preview=armor.waf_preview,
            match=gcp.compute.SecurityPolicyRuleMatchArgs(
                expr=gcp.compute.SecurityPolicyRuleMatchExprArgs(
                    expression=f"evaluatePreconfiguredWaf('{rule_set}', {{'sensitivity': {armor.waf_sensitivity}}})"),
            ),
        )
        for i, rule_set in enumerate(WAF_RULE_SETS)
    ]
    rules.append(gcp.compute.SecurityPolicyRuleArgs(
        priority=2000,
        action="rate_based_ban",
        description="Per-IP rate-based ban",
        match=every_ip,
        rate_limit_options=gcp.compute.SecurityPolicyRuleRateLimitOptionsArgs(
            conform_action="allow",
            exceed_action="deny(429)",
            enforce_on_key="IP",
            rate_limit_threshold=gcp.compute.SecurityPolicyRuleRateLimitOptionsRateLimitThresholdArgs(
                count=armor.rate_limit_requests, interval_sec=armor.rate_limit_interval_sec),
            ban_duration_sec=armor.ban_duration_sec,
        ),
    ))
    rules.append(gcp.compute.SecurityPolicyRuleArgs(
        priority=DEFAULT_RULE_PRIORITY,
        action="allow",
        description="Default: allow",
        match=every_ip,
    ))
    return rules


def gateway_spec(address_name: pulumi.Input[str]) -> dict:
    """``spec`` of the Gateway: class ``GATEWAY_CLASS``, the named static address, listeners
    ``https`` (443, TLS from the certificate map annotation) and ``http`` (80, redirect only).

    Listeners keep the default ``allowedRoutes`` (routes from the Gateway's own namespace).
    """
    return {
        "gatewayClassName": GATEWAY_CLASS,
        "addresses": [{"type": "NamedAddress", "value": address_name}],
        "listeners": [
            {"name": HTTPS_LISTENER, "protocol": "HTTPS", "port": 443},
            {"name": HTTP_LISTENER, "protocol": "HTTP", "port": 80},
        ],
    }


def http_redirect_route_spec(gateway_name: str) -> dict:
    """``spec`` of the HTTPRoute bound to the ``http`` listener only: every request is
    answered ``301`` to the same host and path over ``https``
    (Gateway API ``RequestRedirect`` filter; GKE: "Redirect HTTP traffic to HTTPS")."""
    return {
        "parentRefs": [{
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": gateway_name,
            "sectionName": HTTP_LISTENER,
        }],
        "rules": [{
            "filters": [{
                "type": "RequestRedirect",
                "requestRedirect": {"scheme": "https", "statusCode": 301},
            }],
        }],
    }


def url_map_name_regex(namespace: str, gateway_name: str) -> str:
    """RE2 regex for the URL map GKE's Gateway controller creates for a Gateway.

    GKE names it ``gkegw1-<4 chars>-<namespace>-<gateway>-<12 chars>`` (observed naming
    scheme of the ``gke-l7-*`` classes, not an API contract). It truncates the middle part
    when the name would exceed 63 characters, so this raises
    :class:`LoadBalancerArgsError` when ``namespace`` and ``gateway_name`` are too long
    for the regex to stay exact (together at most 38 characters).
    """
    _check(len(namespace) + len(gateway_name) <= 38, "namespace/gateway_name",
           f"{namespace!r} + {gateway_name!r} exceed 38 characters; GKE would truncate the URL map "
           "name and the monitoring filter could not match it")
    _check(bool(_K8S_NAME.match(namespace)), "namespace", f"must be an RFC 1123 label, got {namespace!r}")
    # RFC 1123 labels hold no regex metacharacters, so they are used verbatim (no escaping,
    # which would put backslashes into the Monitoring filter string).
    return f"gkegw1-[a-z0-9]+-{namespace}-{gateway_name}-[a-z0-9]+"
