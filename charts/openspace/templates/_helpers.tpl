{{/*
Chart name, used in the app.kubernetes.io/name label (the operator selects agents by it).
*/}}
{{- define "openspace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name: the release name, plus the chart name unless it is already in it.
Truncated so that "<fullname>-command-token" still fits in 63 characters.
*/}}
{{- define "openspace.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 49 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 49 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 49 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "openspace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource (add app.kubernetes.io/component where it applies).
*/}}
{{- define "openspace.labels" -}}
helm.sh/chart: {{ include "openspace.chart" . }}
{{ include "openspace.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "openspace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openspace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Per component: pass (dict "ctx" $ "component" "operator").
*/}}
{{- define "openspace.componentLabels" -}}
{{ include "openspace.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "openspace.componentSelectorLabels" -}}
{{ include "openspace.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The operator's --agent-selector: exactly the agent pods' selector labels.
*/}}
{{- define "openspace.agentSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/component=agent,app.kubernetes.io/instance=%s" (include "openspace.name" .) .Release.Name }}
{{- end }}

{{- define "openspace.operator.fullname" -}}
{{- printf "%s-operator" (include "openspace.fullname" .) }}
{{- end }}

{{- define "openspace.agent.fullname" -}}
{{- printf "%s-agent" (include "openspace.fullname" .) }}
{{- end }}

{{- define "openspace.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "openspace.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "openspace.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "openspace.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The command token: its Secret, key, and where both components mount it.
*/}}
{{- define "openspace.commandToken.secretName" -}}
{{- default (printf "%s-command-token" (include "openspace.fullname" .)) .Values.commandToken.existingSecret }}
{{- end }}

{{- define "openspace.commandToken.secretKey" -}}
{{- if .Values.commandToken.existingSecret }}
{{- .Values.commandToken.existingSecretKey }}
{{- else -}}
token
{{- end }}
{{- end }}

{{- define "openspace.commandToken.dir" -}}
/var/run/secrets/openspace/command-token
{{- end }}

{{/*
The pod volume holding the token as the file "token" (both components).
*/}}
{{- define "openspace.commandToken.volume" -}}
- name: command-token
  secret:
    secretName: {{ include "openspace.commandToken.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ include "openspace.commandToken.secretKey" . }}
        path: token
{{- end }}

{{- define "openspace.commandToken.volumeMount" -}}
- name: command-token
  mountPath: {{ include "openspace.commandToken.dir" . }}
  readOnly: true
{{- end }}

{{/*
A container image reference: pass (dict "image" .Values.operator.image "ctx" $).
*/}}
{{- define "openspace.image" -}}
{{- $repository := .image.repository }}
{{- if .image.registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .image.registry) .image.repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
The session URL template (operator.urlTemplate, else derived from the Ingress or the agents'
HTTP port).
*/}}
{{- define "openspace.urlTemplate" -}}
{{- if .Values.operator.urlTemplate }}
{{- .Values.operator.urlTemplate }}
{{- else if .Values.ingress.enabled }}
{{- printf "https://%s/frontend/#/streaming?id={id}&token={token}" (required "ingress.host is required when ingress.enabled is true" .Values.ingress.host) }}
{{- else }}
{{- printf "http://{host}:%d/frontend/#/streaming?id={id}&token={token}" (int .Values.agent.ports.http) }}
{{- end }}
{{- end }}

{{/*
The TURN relay: its name, the Secret shared by it and the agents, and where both mount it.
*/}}
{{- define "openspace.turn.fullname" -}}
{{- printf "%s-turn" (include "openspace.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "openspace.turn.secretName" -}}
{{- default (printf "%s-turn-secret" (include "openspace.fullname" .)) .Values.turn.secret.existingSecret }}
{{- end }}

{{- define "openspace.turn.secretFile" -}}
/var/run/secrets/openspace/turn/secret
{{- end }}

{{- define "openspace.turn.volume" -}}
- name: turn-secret
  secret:
    secretName: {{ include "openspace.turn.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ ternary .Values.turn.secret.existingSecretKey "secret" (ne .Values.turn.secret.existingSecret "") }}
        path: secret
{{- end }}

{{- define "openspace.turn.volumeMount" -}}
- name: turn-secret
  mountPath: {{ dir (include "openspace.turn.secretFile" .) }}
  readOnly: true
{{- end }}

{{/*
The agents' --turn-url list: one URL per transport, e.g. turn:relay.example.org:3478?transport=udp.
*/}}
{{- define "openspace.turn.urls" -}}
{{- $urls := list }}
{{- range .Values.turn.transports }}
{{- $urls = append $urls (printf "turn:%s:%d?transport=%s" $.Values.turn.host (int $.Values.turn.port) .) }}
{{- end }}
{{- join "," $urls }}
{{- end }}
