{{/*
Chart name (app.kubernetes.io/name), as `helm create` does.
*/}}
{{- define "print-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified object name, as `helm create` does: fullnameOverride, else the
release name when it contains the chart name, else <release>-<chart>. The
Pulumi program sets fullnameOverride to the service name (files-api,
extractor), which is also the Kubernetes ServiceAccount the Workload Identity
binding names.
*/}}
{{- define "print-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value.
*/}}
{{- define "print-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels (app.kubernetes.io/*).
*/}}
{{- define "print-service.labels" -}}
helm.sh/chart: {{ include "print-service.chart" . }}
{{ include "print-service.selectorLabels" . }}
app.kubernetes.io/component: {{ .Values.component }}
app.kubernetes.io/part-of: print-platform
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels of the service's pods (Deployment, Service, HPA, PDB,
PodMonitoring). The migration Job's pods carry other labels, so the Service
never routes to them.
*/}}
{{- define "print-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "print-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the migration Job's pods: the release's instance label but another
name, outside the Service's selector (and the service's NetworkPolicy's).
*/}}
{{- define "print-service.migrateLabels" -}}
helm.sh/chart: {{ include "print-service.chart" . }}
{{ include "print-service.migrateSelectorLabels" . }}
app.kubernetes.io/component: migrations
app.kubernetes.io/part-of: print-platform
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels of the migration Job's pods (its NetworkPolicy's podSelector).
*/}}
{{- define "print-service.migrateSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-migrate" (include "print-service.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the service's Kubernetes ServiceAccount.
*/}}
{{- define "print-service.serviceAccountName" -}}
{{- include "print-service.fullname" . }}
{{- end }}

{{/*
Name of the migration hook Job's ServiceAccount (<fullname>-migrate): a hook
resource itself, because pre-install hooks run before the release's own
objects exist.
*/}}
{{- define "print-service.migrateServiceAccountName" -}}
{{- printf "%s-migrate" (include "print-service.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The app image, by digest only.
*/}}
{{- define "print-service.image" -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- end }}

{{/*
terminationGracePeriodSeconds = preStop sleep + gunicorn graceful timeout + margin.
Fails when the extractor's drain does not fit in gunicorn's graceful timeout.
*/}}
{{- define "print-service.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- if and (gt (int $s.drainTimeoutSeconds) 0) (ge (int $s.drainTimeoutSeconds) (int $s.gracefulTimeoutSeconds)) }}
{{- fail (printf "shutdown.drainTimeoutSeconds (%d) must be below shutdown.gracefulTimeoutSeconds (%d): gunicorn would kill the worker mid-drain" (int $s.drainTimeoutSeconds) (int $s.gracefulTimeoutSeconds)) }}
{{- end }}
{{- add $s.preStopSleepSeconds $s.gracefulTimeoutSeconds $s.marginSeconds }}
{{- end }}

{{/*
Pod-level security context: non-root, seccomp RuntimeDefault.
UID/GID 10001 is the images' own USER (each service's Dockerfile; tests/charts checks they
agree), so the app runs as the user its files were installed for. The Cloud SQL
Auth Proxy (distroless, writes no files) runs under the same non-root UID.
*/}}
{{- define "print-service.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container-level security context: read-only root, no privilege escalation, all
capabilities dropped.
*/}}
{{- define "print-service.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Name of the container port the probes and the PodMonitoring use: "ops" (the
cluster-only listener, opsPort) when there is one, else "http". Fails when
opsPort equals port (one listener cannot be both).
*/}}
{{- define "print-service.opsPortName" -}}
{{- if gt (int .Values.opsPort) 0 }}
{{- if eq (int .Values.opsPort) (int .Values.port) }}
{{- fail (printf "opsPort (%d) must differ from port: the ops endpoints need a listener the route never reaches" (int .Values.opsPort)) }}
{{- end }}
{{- "ops" }}
{{- else }}
{{- "http" }}
{{- end }}
{{- end }}

{{/*
The service's environment variables (docs/seams.md), sorted as listed.
*/}}
{{- define "print-service.env" -}}
- name: PORT
  value: {{ .Values.port | quote }}
{{- if gt (int .Values.opsPort) 0 }}
- name: OPS_PORT
  value: {{ .Values.opsPort | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ .Values.app.logLevel | quote }}
{{- with .Values.app.googleCloudProject }}
- name: GOOGLE_CLOUD_PROJECT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.app.uploadsBucket }}
- name: UPLOADS_BUCKET
  value: {{ . | quote }}
{{- end }}
{{- with .Values.app.uploadsSubscription }}
- name: UPLOADS_SUBSCRIPTION
  value: {{ . | quote }}
{{- end }}
{{- if gt (int64 .Values.app.maxUploadBytes) 0 }}
{{- if not (and (gt (int .Values.app.workers) 0) (gt (int .Values.app.maxConcurrentUploads) 0)) }}
{{- fail "app.maxUploadBytes needs app.workers and app.maxConcurrentUploads (> 0): /tmp must hold workers x maxConcurrentUploads x maxUploadBytes, so the chart sets them instead of relying on the app's defaults" }}
{{- end }}
- name: MAX_UPLOAD_BYTES
  value: {{ int64 .Values.app.maxUploadBytes | quote }}
{{- end }}
{{- if gt (int .Values.app.workers) 0 }}
- name: WEB_CONCURRENCY
  value: {{ int .Values.app.workers | quote }}
{{- end }}
{{- if gt (int .Values.app.maxConcurrentUploads) 0 }}
- name: MAX_CONCURRENT_UPLOADS
  value: {{ int .Values.app.maxConcurrentUploads | quote }}
{{- end }}
{{- with .Values.app.iapAudience }}
- name: IAP_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{- if .Values.database.name }}
{{- if not .Values.database.user }}
{{- fail "database.user is required when database.name is set (the Cloud SQL IAM database user)" }}
{{- end }}
- name: DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s@127.0.0.1:%d/%s" (.Values.database.user | replace "@" "%40") (int .Values.database.port) .Values.database.name | quote }}
{{- end }}
- name: GUNICORN_CMD_ARGS
  value: {{ printf "--graceful-timeout=%d" (int .Values.shutdown.gracefulTimeoutSeconds) | quote }}
{{- if gt (int .Values.shutdown.drainTimeoutSeconds) 0 }}
- name: DRAIN_TIMEOUT_SECONDS
  value: {{ .Values.shutdown.drainTimeoutSeconds | quote }}
{{- end }}
- name: TMPDIR
  value: /tmp
{{- range $name, $value := .Values.app.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/*
The Cloud SQL Auth Proxy as a native sidecar (an init container with
restartPolicy Always, Kubernetes >= 1.29): it starts before the app, the
startup probe holds the app back until the proxy is ready, and it stops after
the app -- in a Job it ends when the main container ends, so the Job completes.
Flags: https://cloud.google.com/sql/docs/postgres/connect-auth-proxy and
https://github.com/GoogleCloudPlatform/cloud-sql-proxy#configuring-healthchecks
*/}}
{{- define "print-service.cloudSqlProxy" -}}
{{- $p := .Values.cloudSqlProxy -}}
- name: cloud-sql-proxy
  image: {{ printf "%s:%s@%s" $p.image.repository $p.image.tag $p.image.digest | quote }}
  imagePullPolicy: IfNotPresent
  restartPolicy: Always
  args:
    - --auto-iam-authn
    - --private-ip
    - --structured-logs
    - --address=127.0.0.1
    - {{ printf "--port=%d" (int .Values.database.port) | quote }}
    - --health-check
    - --http-address=0.0.0.0
    - {{ printf "--http-port=%d" (int $p.healthPort) | quote }}
    - --exit-zero-on-sigterm
    - {{ $p.instanceConnectionName | quote }}
  ports:
    - name: proxy-health
      containerPort: {{ $p.healthPort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /startup
      port: proxy-health
    periodSeconds: 1
    timeoutSeconds: 5
    failureThreshold: 60
  livenessProbe:
    httpGet:
      path: /liveness
      port: proxy-health
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 3
  # No readiness probe: the proxy's /readiness fails when its connection
  # limit is reached, which would take the whole pod out of the Service.
  resources:
    {{- toYaml $p.resources | nindent 4 }}
  securityContext:
    {{- include "print-service.containerSecurityContext" . | nindent 4 }}
{{- end }}


{{/*
NetworkPolicy egress rules of every pod of the release (the service's and the
migration Job's, each selected by its own policy): DNS, the GKE metadata
server, Google APIs on 443 and, with the Cloud SQL Auth Proxy, Cloud SQL on 3307.
*/}}
{{- define "print-service.networkPolicyEgress" -}}
{{- $np := .Values.networkPolicy -}}
# DNS: kube-dns pods, the kube-dns Service address (the cluster's Service
# range: NodeLocal DNSCache, on by default in Autopilot, answers there from
# the host network), NodeLocal DNSCache's link-local address, and the GKE
# metadata server, which serves Cloud DNS for GKE (the only DNS provider of
# new Autopilot clusters: the pods' resolv.conf names 169.254.169.254).
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    {{- range $np.dnsCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- with $np.nodeLocalDnsIp }}
    - ipBlock:
        cidr: {{ . }}/32
    {{- end }}
    - ipBlock:
        cidr: 169.254.169.254/32
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# The GKE metadata server (Workload Identity tokens): 169.254.169.254:80,
# and 169.254.169.252:988 on GKE Dataplane V2
# (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#restrict-network).
- to:
    - ipBlock:
        cidr: 169.254.169.254/32
  ports:
    - port: 80
      protocol: TCP
- to:
    - ipBlock:
        cidr: 169.254.169.252/32
  ports:
    - port: 988
      protocol: TCP
# Google APIs (Cloud Storage, Pub/Sub, Cloud SQL Admin, Monitoring) over HTTPS.
- to:
    {{- range $np.googleApisCidrs }}
    - ipBlock:
        cidr: {{ .cidr }}
        {{- with .except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
  ports:
    - port: 443
      protocol: TCP
{{- if .Values.cloudSqlProxy.instanceConnectionName }}
# Cloud SQL private IP: the Auth Proxy connects to the instance's server-side proxy on 3307.
- to:
    {{- range $np.cloudSqlCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - port: 3307
      protocol: TCP
{{- end }}
{{- end }}
