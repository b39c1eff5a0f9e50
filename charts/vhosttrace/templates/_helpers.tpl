{{/* Names and labels, one place for all templates. */}}
{{- define "vhosttrace.operatorName" -}}vhosttrace-operator{{- end }}
{{- define "vhosttrace.agentName" -}}vhosttrace-agent{{- end }}

{{- define "vhosttrace.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "vhosttrace.labels" -}}
app.kubernetes.io/name: vhosttrace
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: vhosttrace
{{- end }}

{{- define "vhosttrace.operatorSelector" -}}
app.kubernetes.io/name: vhosttrace
app.kubernetes.io/component: operator
{{- end }}
