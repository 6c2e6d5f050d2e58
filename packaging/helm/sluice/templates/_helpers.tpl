{{/* The name of every object: the release's. */}}
{{- define "sluice.fullname" -}}
{{ .Release.Name }}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sluice.labels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: sluice
{{- end -}}

{{- define "sluice.secretName" -}}
{{ default (include "sluice.fullname" .) .Values.secret.name }}
{{- end -}}
