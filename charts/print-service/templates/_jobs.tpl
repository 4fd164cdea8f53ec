{{/*
Helpers of the scheduled Jobs (cronjob-reconcile.yaml, cronjob-sweep.yaml).
*/}}

{{/*
Labels of a scheduled Job's pods: the release's instance label, another name
(<name>-<job>) and component <job>, so neither the Service nor the service's
NetworkPolicy selects them. Call with (dict "root" $ "job" "reconcile").
*/}}
{{- define "print-service.jobSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-%s" (include "print-service.name" .root) .job | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "print-service.jobLabels" -}}
helm.sh/chart: {{ include "print-service.chart" .root }}
{{ include "print-service.jobSelectorLabels" . }}
app.kubernetes.io/component: {{ .job }}
app.kubernetes.io/part-of: print-platform
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
A scheduled Job's own NetworkPolicy: no ingress, the release's egress (DNS,
metadata server, Google APIs, Cloud SQL). The namespace denies by default.
Call with (dict "root" $ "job" "reconcile").
*/}}
{{- define "print-service.jobNetworkPolicy" -}}
{{- if .root.Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ printf "%s-%s" (include "print-service.fullname" .root) .job | trunc 63 | trimSuffix "-" }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "print-service.jobLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "print-service.jobSelectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  egress:
    {{- include "print-service.networkPolicyEgress" .root | nindent 4 }}
{{- end }}
{{- end }}

{{/*
The pod template of a scheduled Job. Call with (dict "root" $ "job" NAME
"serviceAccount" KSA "command" LIST "env" YAML-STRING "resources" MAP
"deadline" SECONDS). The Cloud SQL Auth Proxy runs as a native sidecar, so the
Job completes when the command ends.
*/}}
{{- define "print-service.jobPod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "print-service.jobLabels" . | nindent 4 }}
  annotations:
    checksum/chart: {{ $root.Values.chartChecksum | quote }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ .serviceAccount }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  activeDeadlineSeconds: {{ .deadline }}
  securityContext:
    {{- include "print-service.podSecurityContext" $root | nindent 4 }}
  {{- if $root.Values.cloudSqlProxy.instanceConnectionName }}
  initContainers:
    {{- include "print-service.cloudSqlProxy" $root | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .job }}
      image: {{ include "print-service.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command:
        {{- toYaml .command | nindent 8 }}
      env:
        {{- .env | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- include "print-service.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
{{- end }}

{{/*
The reconciler's environment (apps/extractor reconcile.py ReconcilerSettings): its
own IAM database user, the uploads topic, the dead-letter subscription, the bound.
*/}}
{{- define "print-service.reconcilerEnv" -}}
{{- $r := .Values.reconcile -}}
- name: DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s@127.0.0.1:%d/%s" ($r.databaseUser | replace "@" "%40") (int .Values.database.port) .Values.database.name | quote }}
- name: GOOGLE_CLOUD_PROJECT
  value: {{ .Values.app.googleCloudProject | quote }}
- name: UPLOADS_BUCKET
  value: {{ .Values.app.uploadsBucket | quote }}
- name: UPLOADS_TOPIC
  value: {{ $r.uploadsTopic | quote }}
- name: DEAD_LETTER_SUBSCRIPTION
  value: {{ $r.deadLetterSubscription | quote }}
- name: PENDING_BOUND_SECONDS
  value: {{ $r.pendingBoundSeconds | quote }}
- name: MAX_REDRIVES
  value: {{ $r.maxRedrives | quote }}
- name: LOG_LEVEL
  value: {{ .Values.app.logLevel | quote }}
- name: TMPDIR
  value: /tmp
{{- end }}
