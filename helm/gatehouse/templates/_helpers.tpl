{{/*
Chart name, truncated to the 63 characters Kubernetes names allow.
*/}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: "<release>-<chart>", or the release
name alone when it already contains the chart name.
*/}}
{{- define "gatehouse.fullname" -}}
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

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selects the server pods only (not the migration Job's). */}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels of every resource, without the component. */}}
{{- define "gatehouse.baseLabels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the server's resources. */}}
{{- define "gatehouse.labels" -}}
{{ include "gatehouse.baseLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatehouse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Name of the Secret the env vars and the signing key come from. */}}
{{- define "gatehouse.secretName" -}}
{{- default (include "gatehouse.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* "true" when a signing key PEM is mounted at /etc/gatehouse/keys/signing.pem. */}}
{{- define "gatehouse.signingKeyMounted" -}}
{{- if .Values.secret.existingSecret }}
{{- if .Values.secret.mountSigningKey }}true{{ end }}
{{- else if .Values.secret.signingKeyPem }}true{{ end }}
{{- end }}

{{/*
The database URL the chart can see: secret.databaseUrl, else
config.database.url. Empty when an existingSecret is used (the chart cannot
read it and trusts it to hold a shared database's URL).
*/}}
{{- define "gatehouse.visibleDatabaseUrl" -}}
{{- if not .Values.secret.existingSecret }}
{{- $cfgdb := (.Values.config | default dict).database | default dict }}
{{- default ($cfgdb.url | default "") .Values.secret.databaseUrl }}
{{- end }}
{{- end }}

{{/*
Refuses combinations that cannot work. Included by the Deployment, so every
render checks it.
*/}}
{{- define "gatehouse.validate" -}}
{{- $url := include "gatehouse.visibleDatabaseUrl" . }}
{{- $sqlite := hasPrefix "sqlite:" $url }}
{{- if and $sqlite (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail (printf "gatehouse: the database is SQLite (%s), which lives on each pod's own emptyDir, so it cannot serve more than one replica (replicaCount=%v, autoscaling.enabled=%v). Set secret.databaseUrl (or secret.existingSecret) to a PostgreSQL URL, or keep replicaCount=1 and autoscaling.enabled=false." $url .Values.replicaCount .Values.autoscaling.enabled) }}
{{- end }}
{{- if and .Values.migrations.enabled (not (has .Values.migrations.mode (list "initContainer" "job"))) }}
{{- fail (printf "gatehouse: migrations.mode must be initContainer or job, not %q" .Values.migrations.mode) }}
{{- end }}
{{- if and .Values.migrations.enabled (eq .Values.migrations.mode "job") $sqlite }}
{{- fail "gatehouse: migrations.mode=job needs a shared database; SQLite lives on each pod's emptyDir, which a Job cannot reach. Use migrations.mode=initContainer with SQLite." }}
{{- end }}
{{- if and .Values.secret.smtpUrl (ne (toString ((.Values.config | default dict).mail | default dict).transport) "smtp") }}
{{- fail "gatehouse: secret.smtpUrl is set but config.mail.transport is not \"smtp\"; mail would not be sent through it." }}
{{- end }}
{{- end }}

{{/* The issuer: config.server.public_url, else derived from the Ingress or the Service. */}}
{{- define "gatehouse.publicUrl" -}}
{{- $server := (.Values.config | default dict).server | default dict }}
{{- if $server.public_url }}
{{- $server.public_url | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) $host }}
{{- else }}
{{- $port := int .Values.service.port }}
{{- printf "http://%s.%s.svc%s" (include "gatehouse.fullname" .) .Release.Namespace (ternary "" (printf ":%d" $port) (eq $port 80)) }}
{{- end }}
{{- end }}

{{/*
One TOML value. Explicit rather than toToml: Helm reads every YAML number as
a float, which toToml would print as "65536.0" where the server wants an
integer. Strings are TOML basic strings with \\, \", \n, \r and \t escaped.
*/}}
{{- define "gatehouse.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}
{{- printf "\"%s\"" ($v | replace "\\" "\\\\" | replace "\"" "\\\"" | replace "\n" "\\n" | replace "\r" "\\r" | replace "\t" "\\t") }}
{{- else if kindIs "bool" $v }}
{{- ternary "true" "false" $v }}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) }}
{{- if eq (float64 $v) (float64 (int64 $v)) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) }}
{{- $v }}
{{- else if kindIs "slice" $v }}
{{- $items := list }}
{{- range $v }}{{ $items = append $items (include "gatehouse.tomlValue" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else if kindIs "map" $v }}
{{- $items := list }}
{{- range $k, $e := $v }}{{ if not (kindIs "invalid" $e) }}{{ $items = append $items (printf "%s = %s" (include "gatehouse.tomlKey" $k) (include "gatehouse.tomlValue" $e)) }}{{ end }}{{ end }}
{{- printf "{ %s }" (join ", " $items) }}
{{- else }}
{{- fail (printf "gatehouse: cannot write %v (%s) as TOML" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{/* A TOML key: bare when it can be, quoted otherwise. */}}
{{- define "gatehouse.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ include "gatehouse.tomlValue" . }}{{ end }}
{{- end }}

{{/* The key = value lines of one table; null values are left out (server default). */}}
{{- define "gatehouse.tomlTable" -}}
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}
{{ include "gatehouse.tomlKey" $k }} = {{ include "gatehouse.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}

{{/*
gatehouse.toml from .Values.config, in config/gatehouse.toml's section order, with the
keys the chart owns forced: server.bind, the derived public_url and
reset_url, and keys.private_key_file when a signing key is mounted.
*/}}
{{- define "gatehouse.configToml" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $server := $cfg.server | default dict }}
{{- $_ := set $server "bind" "0.0.0.0:8080" }}
{{- $publicUrl := include "gatehouse.publicUrl" . }}
{{- $_ = set $server "public_url" $publicUrl }}
{{- $_ = set $cfg "server" $server }}
{{- $accounts := $cfg.accounts | default dict }}
{{- if not $accounts.reset_url }}
{{- $_ = set $accounts "reset_url" (printf "%s/password/reset" $publicUrl) }}
{{- end }}
{{- $_ = set $cfg "accounts" $accounts }}
{{- if include "gatehouse.signingKeyMounted" . }}
{{- $keys := $cfg.keys | default dict }}
{{- $_ = set $keys "private_key_file" "/etc/gatehouse/keys/signing.pem" }}
{{- $_ = set $cfg "keys" $keys }}
{{- end }}
{{- $order := list "server" "log" "database" "redis" "keys" "tokens" "accounts" "password_hash" "mail" "rate_limits" "captcha" }}
{{- $rest := list }}
{{- range $k, $_ := $cfg }}{{ if and (not (has $k $order)) (ne $k "clients") }}{{ $rest = append $rest $k }}{{ end }}{{ end }}
# gatehouse.toml, rendered by the Helm chart from .Values.config.
# Secrets (database, Redis and SMTP URLs, the encryption key) are not here:
# they come from the Secret as GATEHOUSE_SECTION__KEY environment variables,
# which override this file.
{{- range $section := concat $order (sortAlpha $rest) }}
{{- $table := get $cfg $section }}
{{- if $table }}

[{{ $section }}]
{{- include "gatehouse.tomlTable" $table }}
{{- end }}
{{- end }}
{{- range $cfg.clients }}

[[clients]]
{{- include "gatehouse.tomlTable" . }}
{{- end }}
{{ end }}

{{/* The config file's path, and env vars taken from the Secret; every key optional so a missing one leaves the config file's value. */}}
{{- define "gatehouse.secretEnv" -}}
{{- $secret := include "gatehouse.secretName" . }}
{{- $keys := .Values.secret.keys }}
# Lets every subcommand (`kubectl exec ... gatehouse users create`) find the config.
- name: GATEHOUSE_CONFIG
  value: /etc/gatehouse/gatehouse.toml
- name: GATEHOUSE_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.databaseUrl }}
      optional: true
- name: GATEHOUSE_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.redisUrl }}
      optional: true
- name: GATEHOUSE_MAIL__SMTP_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.smtpUrl }}
      optional: true
- name: GATEHOUSE_KEYS__ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.encryptionKey }}
      optional: true
{{- end }}
