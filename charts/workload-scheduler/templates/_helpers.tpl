{{/*
The chart name, or nameOverride.
*/}}
{{- define "workload-scheduler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: the release name if it already contains the chart
name, else "<release>-<chart>". Cluster-scoped objects (ClusterRole, ClusterRoleBinding) use
it too, so two releases never share one.
*/}}
{{- define "workload-scheduler.fullname" -}}
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

{{- define "workload-scheduler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "workload-scheduler.labels" -}}
helm.sh/chart: {{ include "workload-scheduler.chart" . }}
{{ include "workload-scheduler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: workload-scheduler
{{- end }}

{{/*
Labels that select the scheduler's pods.
*/}}
{{- define "workload-scheduler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workload-scheduler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scheduler
{{- end }}

{{- define "workload-scheduler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "workload-scheduler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "workload-scheduler.leaseName" -}}
{{- default (include "workload-scheduler.fullname" .) .Values.leaderElect.leaseName }}
{{- end }}

{{- define "workload-scheduler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The scheduler's config file (keys are its settings in snake_case, scheduler/config.py).
*/}}
{{- define "workload-scheduler.config" -}}
{{- $config := dict
  "scheduler_name" .Values.schedulerName
  "scoring_strategy" .Values.scoringStrategy
  "log_format" .Values.logFormat
  "log_level" .Values.logLevel
  "metrics_bind_address" "0.0.0.0:8080"
  "health_bind_address" "0.0.0.0:8081"
  "secure_metrics" .Values.metrics.secure
  "leader_elect" .Values.leaderElect.enabled
  "leader_elect_namespace" .Release.Namespace
  "leader_elect_lease_name" (include "workload-scheduler.leaseName" .)
  "leader_elect_lease_duration" .Values.leaderElect.leaseDuration
  "leader_elect_renew_deadline" .Values.leaderElect.renewDeadline
  "leader_elect_retry_period" .Values.leaderElect.retryPeriod
  "gang_timeout_seconds" .Values.gangTimeoutSeconds
-}}
{{- if and .Values.metrics.secure .Values.metrics.tlsSecretName }}
{{- $_ := set $config "tls_cert_file" (printf "%s/tls.crt" (include "workload-scheduler.tlsDir" .)) }}
{{- $_ := set $config "tls_private_key_file" (printf "%s/tls.key" (include "workload-scheduler.tlsDir" .)) }}
{{- end }}
{{- toYaml (merge (deepCopy .Values.extraConfig) $config) }}
{{- end }}

{{/*
Where the metrics serving certificate Secret (metrics.tlsSecretName) is mounted.
*/}}
{{- define "workload-scheduler.tlsDir" -}}
/etc/workload-scheduler-tls
{{- end }}

{{- define "workload-scheduler.metricsReader" -}}
{{- printf "%s-metrics-reader" (include "workload-scheduler.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
