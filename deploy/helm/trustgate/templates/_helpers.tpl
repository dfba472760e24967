{{/* Names and labels. */}}
{{- define "trustgate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trustgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "trustgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trustgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "trustgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "trustgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "trustgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trustgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "trustgate.image" -}}
{{- $repo := required "image.repository is required: push the image that `make image` builds to your registry (deploy/README.md) and set image.repository to it" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
trustgate.validate fails the rendering with a message that says what to do, for every value the
server cannot run without, and for every way secret material could end up inline in a manifest.
*/}}
{{- define "trustgate.validate" -}}
{{- if not .Values.kek.existingSecret }}
{{- fail "kek.existingSecret is required: the key-encryption key is read from an existing Secret, never from values. Create one with `kubectl create secret generic trustgate-kek --from-literal=kek=\"$(openssl rand -base64 32)\"` and set kek.existingSecret=trustgate-kek (kek.key names the key in it, default kek)" }}
{{- end }}
{{- if not .Values.kek.key }}
{{- fail "kek.key is empty: name the key of kek.existingSecret that holds the key-encryption key (default kek)" }}
{{- end }}
{{- if and .Values.kek.previous.existingSecret (not .Values.kek.previous.key) }}
{{- fail "kek.previous.key is empty: name the key of kek.previous.existingSecret that holds the previous key-encryption key" }}
{{- end }}
{{- if not .Values.database.existingSecret }}
{{- fail "database.existingSecret is required: the PostgreSQL URL carries a password, so it is read from an existing Secret. Create one with `kubectl create secret generic trustgate-database --from-literal=url='postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full'` and set database.existingSecret=trustgate-database (database.key names the key in it, default url)" }}
{{- end }}
{{- if not .Values.database.key }}
{{- fail "database.key is empty: name the key of database.existingSecret that holds the PostgreSQL URL (default url)" }}
{{- end }}
{{- if not .Values.publicURL }}
{{- fail "publicURL is required: the URL CI jobs and clients use to reach Trustgate (e.g. https://trustgate.example.com); it is the issuer of every access token" }}
{{- end }}
{{- if not (regexMatch "^https?://[^/]+" .Values.publicURL) }}
{{- fail (printf "publicURL %q is not an http(s) URL: set it to the URL clients use, e.g. https://trustgate.example.com" .Values.publicURL) }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if has .name (list "TRUSTGATE_KEK" "TRUSTGATE_KEK_PREVIOUS" "TRUSTGATE_DATABASE" "TRUSTGATE_NEW_KEK") }}
{{- fail (printf "extraEnv must not set %s: key material and the database URL come from existing Secrets (kek.existingSecret, kek.previous.existingSecret, database.existingSecret)" .name) }}
{{- end }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable (or enabled=false)" }}
{{- end }}
{{- end }}
