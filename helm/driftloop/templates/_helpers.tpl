{{/*
Names, labels and the small pieces every template shares.
*/}}

{{/* Chart name, overridable. */}}
{{- define "driftloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "driftloop.fullname" -}}
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

{{/* name-version for the helm.sh/chart label. */}}
{{- define "driftloop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "driftloop.labels" -}}
helm.sh/chart: {{ include "driftloop.chart" . }}
{{ include "driftloop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftloop
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels shared by every component. */}}
{{- define "driftloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Names of the parts. */}}
{{- define "driftloop.monitor.fullname" -}}
{{- printf "%s-monitor" (include "driftloop.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftloop.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "driftloop.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftloop.secretName" -}}
{{- include "driftloop.fullname" . }}
{{- end }}

{{/* ServiceAccount of the monitor and the model pods. */}}
{{- define "driftloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftloop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ServiceAccount of the migration pod: a hook runs before the chart's own ServiceAccount exists. */}}
{{- define "driftloop.migrations.serviceAccountName" -}}
{{- if .Values.migrations.serviceAccountName }}
{{- .Values.migrations.serviceAccountName }}
{{- else if and (not .Values.serviceAccount.create) .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{/* Driftloop image reference: digest wins over tag; tag defaults to appVersion. */}}
{{- define "driftloop.image" -}}
{{- include "driftloop.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) }}
{{- end }}

{{/* Any image reference: dict "image" {repository tag digest} "default" tag. */}}
{{- define "driftloop.imageRef" -}}
{{- $img := .image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (toString (default .default $img.tag)) }}
{{- end }}
{{- end }}

{{/*
Database wiring. Exactly one source: the bundled PostgreSQL, database.existingSecret,
database.url, or database.host (+ password). Fails with a message naming the values.
*/}}
{{- define "driftloop.database.validate" -}}
{{- $db := .Values.database }}
{{- $external := 0 }}
{{- if $db.existingSecret }}{{ $external = add1 $external }}{{ end }}
{{- if $db.url }}{{ $external = add1 $external }}{{ end }}
{{- if $db.host }}{{ $external = add1 $external }}{{ end }}
{{- if and .Values.postgresql.enabled (gt $external 0) }}
{{- fail "database.url, database.existingSecret or database.host points at an external PostgreSQL: set postgresql.enabled=false to use it" }}
{{- end }}
{{- if gt $external 1 }}
{{- fail "set only one of database.url, database.existingSecret and database.host" }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (eq $external 0) .Values.monitor.enabled }}
{{- fail "the monitor needs PostgreSQL: set database.existingSecret, database.url or database.host, or postgresql.enabled=true" }}
{{- end }}
{{- if and $db.password $db.passwordSecret.name }}
{{- fail "set either database.password or database.passwordSecret.name, not both" }}
{{- end }}
{{- end }}

{{/* Environment variables that connect a pod to the database (DRIFTLOOP_DATABASE_URL, PGPASSWORD). */}}
{{- define "driftloop.database.env" -}}
{{- $ctx := .ctx }}
{{- $secret := .secret }}
{{- $db := $ctx.Values.database }}
{{- if $ctx.Values.postgresql.enabled }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: postgresql-password
- name: DRIFTLOOP_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s@%s:5432/%s" $ctx.Values.postgresql.user (include "driftloop.postgresql.fullname" $ctx) $ctx.Values.postgresql.database | quote }}
{{- else if $db.existingSecret }}
- name: DRIFTLOOP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $db.existingSecret }}
      key: {{ $db.existingSecretKey }}
{{- else if $db.url }}
- name: DRIFTLOOP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: database-url
{{- else if $db.host }}
{{- $url := printf "postgresql+psycopg://%s@%s:%d/%s" $db.user $db.host (int $db.port) $db.name }}
{{- if $db.sslmode }}{{ $url = printf "%s?sslmode=%s" $url $db.sslmode }}{{ end }}
- name: DRIFTLOOP_DATABASE_URL
  value: {{ $url | quote }}
{{- end }}
{{- if and (not $ctx.Values.postgresql.enabled) (or $db.password $db.passwordSecret.name) }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      {{- if $db.passwordSecret.name }}
      name: {{ $db.passwordSecret.name }}
      key: {{ $db.passwordSecret.key }}
      {{- else }}
      name: {{ $secret }}
      key: database-password
      {{- end }}
{{- end }}
{{- end }}

{{/* Secret and key holding the ingest token the sidecars send. */}}
{{- define "driftloop.auth.secretName" -}}
{{- default (include "driftloop.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "driftloop.auth.ingestTokenKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.ingestTokenKey }}{{ else }}ingest-token{{ end }}
{{- end }}

{{- define "driftloop.auth.tokensKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.tokensKey }}{{ else }}tokens{{ end }}
{{- end }}

{{/*
A value kept across upgrades: the given value, else what the live Secret holds, else random.
dict "ctx" . "key" "ingest-token" "value" "..." "generate" "printf ..." -> plain text.
*/}}
{{- define "driftloop.persistedValue" -}}
{{- if .value }}
{{- .value }}
{{- else }}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace (include "driftloop.secretName" .ctx) }}
{{- if and $live $live.data (hasKey $live.data .key) }}
{{- index $live.data .key | b64dec }}
{{- else if eq .kind "whsec" }}
{{- printf "whsec_%s" (randAlphaNum 32 | b64enc) }}
{{- else }}
{{- randAlphaNum 40 }}
{{- end }}
{{- end }}
{{- end }}

{{/* URL of the monitor as the sidecars see it. */}}
{{- define "driftloop.monitor.url" -}}
{{- printf "http://%s.%s.svc:%v" (include "driftloop.monitor.fullname" .) .Release.Namespace .Values.monitor.service.port }}
{{- end }}

{{/* Names of a model's resources: dict "ctx" . "model" name. */}}
{{- define "driftloop.model.fullname" -}}
{{- printf "%s-%s" (include "driftloop.fullname" .ctx) .model | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftloop.model.challengerName" -}}
{{- printf "%s-%s" (include "driftloop.fullname" .ctx) .model | trunc 52 | trimSuffix "-" | printf "%s-challenger" }}
{{- end }}

{{/* A model's effective values: modelDefaults deep-merged with models.<name>. */}}
{{- define "driftloop.model.values" -}}
{{- $merged := mergeOverwrite (deepCopy .ctx.Values.modelDefaults) (deepCopy .model) }}
{{- toYaml $merged }}
{{- end }}

{{/* Selector labels of one model variant: dict "ctx" . "model" name "variant" champion|challenger. */}}
{{- define "driftloop.model.selectorLabels" -}}
{{ include "driftloop.selectorLabels" .ctx }}
{{ include "driftloop.model.componentLabels" . }}
{{- end }}

{{/* What tells one model variant's pods from the rest of the release. */}}
{{- define "driftloop.model.componentLabels" -}}
app.kubernetes.io/component: model
driftloop.io/model: {{ .model }}
driftloop.io/variant: {{ .variant }}
{{- end }}

{{/* Topology spread constraints with the component's selector filled in where missing. */}}
{{- define "driftloop.topologySpread" -}}
{{- $selector := .selector }}
{{- $out := list }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Monitor settings flattened to DRIFTLOOP_* variables: dict "prefix" "DRIFTLOOP_" "settings" map.
Nested maps join with "__" (pydantic-settings' nested delimiter); lists and maps below are JSON.
*/}}
{{- define "driftloop.settingsEnv" -}}
{{- $prefix := .prefix }}
{{- range $key, $value := .settings }}
{{- $name := printf "%s%s" $prefix (upper $key) }}
{{- if kindIs "map" $value }}
{{- include "driftloop.settingsEnv" (dict "prefix" (printf "%s__" $name) "settings" $value) }}
{{- else if kindIs "slice" $value }}
{{ $name }}: {{ toJson $value | quote }}
{{- else if kindIs "invalid" $value }}
{{- else }}
{{ $name }}: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment of the monitor and the migrations: database, tokens, webhook secret. */}}
{{- define "driftloop.monitor.secretEnv" -}}
{{- include "driftloop.database.env" (dict "ctx" . "secret" (include "driftloop.secretName" .)) }}
- name: DRIFTLOOP_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ include "driftloop.auth.secretName" . }}
      key: {{ include "driftloop.auth.tokensKey" . }}
{{- if .Values.webhook.existingSecret }}
- name: DRIFTLOOP_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.webhook.existingSecret }}
      key: {{ .Values.webhook.existingSecretKey }}
{{- else if or .Values.webhook.url .Values.webhook.secret }}
- name: DRIFTLOOP_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "driftloop.secretName" . }}
      key: webhook-secret
{{- end }}
{{- end }}

{{/* Monitor selector labels. */}}
{{- define "driftloop.monitor.selectorLabels" -}}
{{ include "driftloop.selectorLabels" . }}
app.kubernetes.io/component: monitor
{{- end }}

{{/*
A PodDisruptionBudget: dict "ctx" . "name" n "component" c "selector" (map) "pdb" values.
*/}}
{{- define "driftloop.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "driftloop.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (kindIs "invalid" .pdb.minAvailable) }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
{{- end }}

{{/*
A HorizontalPodAutoscaler: dict "ctx" . "name" n "component" c "kind" Deployment|StatefulSet "hpa" values.
*/}}
{{- define "driftloop.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "driftloop.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: {{ .kind }}
    name: {{ .name }}
  minReplicas: {{ .hpa.minReplicas }}
  maxReplicas: {{ .hpa.maxReplicas }}
  metrics:
    {{- with .hpa.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with .hpa.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with .hpa.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Labels of the Prometheus Operator objects: kube-prometheus-stack selects them by `release`. */}}
{{- define "driftloop.monitoringLabels" -}}
{{ include "driftloop.labels" . }}
{{- with .Values.metrics.prometheusRelease }}
release: {{ . | quote }}
{{- end }}
{{- with .Values.metrics.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A file name as a DNS label: "drift_alerts.yaml" -> "drift-alerts". */}}
{{- define "driftloop.fileStem" -}}
{{- base . | trimSuffix ".yaml" | trimSuffix ".yml" | trimSuffix ".json" | trimPrefix "driftloop-" | trimPrefix "driftloop_" | lower | replace "_" "-" | replace "." "-" | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/* An Ingress to one Service port: dict "ctx" . "name" n "component" c "service" svc "port" p "ingress" values. */}}
{{- define "driftloop.ingress" -}}
{{- $ing := .ingress }}
{{- $backend := dict "service" (dict "name" .service "port" (dict "number" .port)) }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "driftloop.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  {{- with $ing.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $http := dict "paths" (list (dict "path" $ing.path "pathType" $ing.pathType "backend" $backend)) }}
  {{- $rules := list }}
  {{- range (default (list "") $ing.hosts) }}
  {{- $rule := dict "http" $http }}
  {{- if . }}{{ $_ := set $rule "host" . }}{{ end }}
  {{- $rules = append $rules $rule }}
  {{- end }}
  rules:
    {{- toYaml $rules | nindent 4 }}
{{- end }}
