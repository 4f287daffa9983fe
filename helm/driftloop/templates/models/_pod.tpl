{{/*
Pod template of one model variant.
dict "ctx" $ "name" model "m" effective-values "variant" champion|challenger "fullname" workload-name.
The champion pod runs the Bento and the Driftloop sidecar; the model Service targets the sidecar.
The challenger pod runs only the Bento: the champion's sidecar sends it its share of traffic
(through the challenger Service) and records those answers as variant=challenger, so a second
sidecar would only count them twice.
*/}}
{{- define "driftloop.model.podTemplate" -}}
{{- $ctx := .ctx }}
{{- $m := .m }}
{{- $v := index $m .variant }}
{{- $selector := include "driftloop.model.selectorLabels" (dict "ctx" $ctx "model" .name "variant" .variant) | fromYaml }}
metadata:
  {{- with $m.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  labels:
    {{- include "driftloop.labels" $ctx | nindent 4 }}
    {{- include "driftloop.model.componentLabels" (dict "model" .name "variant" .variant) | nindent 4 }}
    {{- with $v.version }}
    driftloop.io/model-version: {{ . | toString | trunc 63 | trimSuffix "-" | quote }}
    {{- end }}
    {{- with $m.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "driftloop.serviceAccountName" $ctx }}
  automountServiceAccountToken: {{ $ctx.Values.serviceAccount.automountServiceAccountToken }}
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $m.terminationGracePeriodSeconds }}
  {{- with $m.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: bento
      image: {{ include "driftloop.imageRef" (dict "image" $v.image "default" (toString $v.version)) | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      {{- with $m.bento.command }}
      command:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: bento
          containerPort: {{ $m.bento.port }}
          protocol: TCP
      env:
        - name: BENTOML_PORT
          value: {{ $m.bento.port | quote }}
        {{- with $m.bento.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $m.bento.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.bento.volumeMounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if eq .variant "champion" }}
    {{- $s := $m.sidecar }}
    - name: sidecar
      image: {{ include "driftloop.image" $ctx | quote }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        - sidecar
        - --model
        - {{ .name | quote }}
        - --champion
        - {{ printf "http://127.0.0.1:%v" $m.bento.port | quote }}
        {{- with $m.champion.version }}
        - --champion-version
        - {{ . | toString | quote }}
        {{- end }}
        {{- if $m.challenger.enabled }}
        - --challenger
        - {{ printf "http://%s:%v" (include "driftloop.model.challengerName" (dict "ctx" $ctx "model" .name)) $m.bento.port | quote }}
        {{- with $m.challenger.version }}
        - --challenger-version
        - {{ . | toString | quote }}
        {{- end }}
        - --mode
        - {{ $m.routing.mode | quote }}
        - --weight
        - {{ $m.routing.weight | toString | quote }}
        {{- with $m.routing.stickyKey }}
        - --sticky-key
        - {{ . | quote }}
        {{- end }}
        {{- end }}
        - --monitor
        - {{ default (include "driftloop.monitor.url" $ctx) $s.monitorUrl | quote }}
        - --host
        - "0.0.0.0"
        - --port
        - {{ $s.port | quote }}
        - --admin-port
        - {{ $s.adminPort | quote }}
        - --spool-dir
        - {{ $s.spool.mountPath | quote }}
        {{- with $s.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ $s.port }}
          protocol: TCP
        - name: admin
          containerPort: {{ $s.adminPort }}
          protocol: TCP
      env:
        - name: HOME
          value: /tmp
        - name: DRIFTLOOP_MONITOR_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "driftloop.auth.secretName" $ctx }}
              key: {{ include "driftloop.auth.ingestTokenKey" $ctx }}
        {{- with $s.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $s.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: spool
          mountPath: {{ $s.spool.mountPath }}
        - name: tmp
          mountPath: /tmp
    {{- end }}
  {{- if or (eq .variant "champion") $m.volumes }}
  volumes:
    {{- if eq .variant "champion" }}
    {{- if not $m.sidecar.spool.persistence.enabled }}
    - name: spool
      emptyDir:
        sizeLimit: {{ $m.sidecar.spool.sizeLimit }}
    {{- end }}
    - name: tmp
      emptyDir: {}
    {{- end }}
    {{- with $m.volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with $m.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- include "driftloop.topologySpread" (dict "constraints" . "selector" $selector) | nindent 4 }}
  {{- end }}
{{- end }}
