{{/* The chart's name. */}}
{{- define "volsync-autorestore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every object (63 characters at most: some are DNS labels). */}}
{{- define "volsync-autorestore.fullname" -}}
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

{{- define "volsync-autorestore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "volsync-autorestore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "volsync-autorestore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "volsync-autorestore.labels" -}}
helm.sh/chart: {{ include "volsync-autorestore.chart" . }}
{{ include "volsync-autorestore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: volsync-autorestore
{{- end }}

{{- define "volsync-autorestore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "volsync-autorestore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "volsync-autorestore.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret the serving certificate is in (self: the server's; cert-manager: the Certificate's; secret: yours). */}}
{{- define "volsync-autorestore.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- required "tls.secret.name is required with tls.mode secret" .Values.tls.secret.name }}
{{- else }}
{{- printf "%s-tls" (include "volsync-autorestore.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where cert-manager and secret modes mount the pair, read by config server.tls.certFile/keyFile. */}}
{{- define "volsync-autorestore.tlsDir" -}}/tls{{- end }}

{{/* The Service's DNS names, as the API server calls it and the serving certificate must name it. */}}
{{- define "volsync-autorestore.serviceDnsNames" -}}
{{- $svc := include "volsync-autorestore.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
The server's config.yaml: the user's `config` over the chart's defaults, then the keys the
in-cluster objects depend on (the release namespace, the TLS of tls.mode). Everything else is
left to the server's own defaults (src/config/schema.ts), which test/chart/chart.test.ts applies
when it compares the rendered webhooks and RBAC with the code's.
*/}}
{{- define "volsync-autorestore.config" -}}
{{- $fullname := include "volsync-autorestore.fullname" . }}
{{- $defaults := dict "server" (dict "port" 8443 "metricsPort" 9090) "kube" (dict "leaseName" $fullname) }}
{{- $config := mustMergeOverwrite $defaults (deepCopy (.Values.config | default dict)) }}
{{- if (get (get $config "state" | default dict) "directory") }}
{{- fail "config.state.directory: not in a cluster: the chart's server reads the API server (remove state.directory)" }}
{{- end }}
{{- $_ := set $config.kube "namespace" .Release.Namespace }}
{{- $tls := get $config.server "tls" | default dict }}
{{- if eq .Values.tls.mode "self" }}
{{- $_ := set $tls "selfManaged" (dict
  "secretName" (include "volsync-autorestore.tlsSecretName" .)
  "serviceName" $fullname
  "mutatingWebhookConfigurations" (list $fullname)
  "validatingWebhookConfigurations" (list $fullname)) }}
{{- else if or (eq .Values.tls.mode "cert-manager") (eq .Values.tls.mode "secret") }}
{{- $_ := unset $tls "selfManaged" }}
{{- $_ := set $tls "certFile" (printf "%s/tls.crt" (include "volsync-autorestore.tlsDir" .)) }}
{{- $_ := set $tls "keyFile" (printf "%s/tls.key" (include "volsync-autorestore.tlsDir" .)) }}
{{- if not $tls.dnsNames }}
{{- /* A renewed or replaced pair that does not name the Service is refused and the served one kept. */}}
{{- $_ := set $tls "dnsNames" (list (printf "%s.%s.svc" $fullname .Release.Namespace)) }}
{{- end }}
{{- else }}
{{- fail (printf "tls.mode: must be one of \"self\", \"cert-manager\", \"secret\" (got %q)" .Values.tls.mode) }}
{{- end }}
{{- $_ := set $config.server "tls" $tls }}
{{- toYaml $config }}
{{- end }}

{{/*
The table of webhooks, mirroring WEBHOOKS in src/admission/webhooks.ts (test/chart/chart.test.ts
renders the chart and compares every entry with the code's, so a change there fails until this
follows). objectSelector: "participating" is config.pvc.selector; a map is used as is; absent: none.
policy: which webhooks.<policy>.failurePolicy applies.
*/}}
{{- define "volsync-autorestore.webhookTable" -}}
- name: pvc.volsync-autorestore.io
  webhook: mutate
  policy: pvc
  rules:
    - { apiGroups: [""], apiVersions: [v1], resources: [persistentvolumeclaims], operations: [CREATE] }
  objectSelector: participating
- name: mover-jobs.volsync-autorestore.io
  webhook: mutate
  policy: jobs
  rules:
    - { apiGroups: [batch], apiVersions: [v1], resources: [jobs], operations: [CREATE, UPDATE] }
  objectSelector: { matchLabels: { app.kubernetes.io/created-by: volsync } }
- name: maintenance-jobs.volsync-autorestore.io
  webhook: mutate
  policy: jobs
  rules:
    - { apiGroups: [batch], apiVersions: [v1], resources: [jobs], operations: [CREATE, UPDATE] }
  objectSelector: { matchLabels: { volsync.backube/kopia-maintenance: "true" } }
- name: secrets.validate.volsync-autorestore.io
  webhook: validate
  policy: validate
  rules:
    - { apiGroups: [""], apiVersions: [v1], resources: [secrets], operations: [CREATE, UPDATE] }
- name: replicationdestinations.validate.volsync-autorestore.io
  webhook: validate
  policy: validate
  rules:
    - { apiGroups: [volsync.backube], apiVersions: [v1alpha1], resources: [replicationdestinations], operations: [CREATE, UPDATE] }
- name: pvc.validate.volsync-autorestore.io
  webhook: validate
  policy: validate
  rules:
    - { apiGroups: [""], apiVersions: [v1], resources: [persistentvolumeclaims], operations: [CREATE] }
  objectSelector: participating
{{- end }}

{{/*
The webhooks of one configuration (dict "root" $ "webhook" "mutate"|"validate"), from the table.
*/}}
{{- define "volsync-autorestore.webhooks" -}}
{{- $root := .root }}
{{- $config := include "volsync-autorestore.config" $root | fromYaml }}
{{- $participating := dig "pvc" "selector" (dict "matchExpressions" (list (dict "key" "backup" "operator" "Exists"))) $config }}
{{- $excluded := concat (list "kube-system" $root.Release.Namespace) $root.Values.webhooks.excludeNamespaces | uniq }}
{{- $fullname := include "volsync-autorestore.fullname" $root }}
{{- range $entry := include "volsync-autorestore.webhookTable" $root | fromYamlArray }}
{{- if eq $entry.webhook $.webhook }}
- name: {{ $entry.name }}
  admissionReviewVersions: [v1]
  sideEffects: NoneOnDryRun
  failurePolicy: {{ (get $root.Values.webhooks $entry.policy).failurePolicy }}
  matchPolicy: Equivalent
  timeoutSeconds: {{ $root.Values.webhooks.timeoutSeconds }}
  {{- if eq $.webhook "mutate" }}
  reinvocationPolicy: Never
  {{- end }}
  clientConfig:
    service:
      name: {{ $fullname }}
      namespace: {{ $root.Release.Namespace }}
      path: /{{ $entry.webhook }}
      port: {{ $root.Values.service.port }}
    {{- with include "volsync-autorestore.caBundle" $root | trim }}
    {{- . | nindent 4 }}
    {{- end }}
  rules:
    {{- range $rule := $entry.rules }}
    - apiGroups: {{ $rule.apiGroups | toJson }}
      apiVersions: {{ $rule.apiVersions | toJson }}
      resources: {{ $rule.resources | toJson }}
      operations: {{ $rule.operations | toJson }}
      scope: Namespaced
    {{- end }}
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: {{ $excluded | toJson }}
  {{- if hasKey $entry "objectSelector" }}
  objectSelector:
    {{- if kindIs "string" $entry.objectSelector }}
    {{- toYaml $participating | nindent 4 }}
    {{- else }}
    {{- toYaml $entry.objectSelector | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The caBundle line of a clientConfig. self: the server writes it; kept across upgrades (lookup) so an
upgrade never blanks it. cert-manager: cainjector writes it (annotation). secret: the given CA.
*/}}
{{- define "volsync-autorestore.caBundle" -}}
{{- if eq .Values.tls.mode "secret" }}
caBundle: {{ required "tls.secret.caBundle is required with tls.mode secret" .Values.tls.secret.caBundle }}
{{- else if eq .Values.tls.mode "self" }}
{{- $existing := lookup "admissionregistration.k8s.io/v1" "MutatingWebhookConfiguration" "" (include "volsync-autorestore.fullname" .) }}
{{- $bundle := "" }}
{{- range $w := dig "webhooks" list ($existing | default dict) }}
{{- $bundle = dig "clientConfig" "caBundle" $bundle $w }}
{{- end }}
{{- if $bundle }}
caBundle: {{ $bundle }}
{{- end }}
{{- end }}
{{- end }}

{{/* Annotations of the webhook configurations. */}}
{{- define "volsync-autorestore.webhookAnnotations" -}}
{{- if eq .Values.tls.mode "cert-manager" }}
cert-manager.io/inject-ca-from: {{ printf "%s/%s-serving" .Release.Namespace (include "volsync-autorestore.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Whether the server reads the repository volume itself: a catalog source reads a filesystem path
inside config.movers.repository.mountPath ("true" or "").
*/}}
{{- define "volsync-autorestore.mountsRepository" -}}
{{- $config := include "volsync-autorestore.config" . | fromYaml }}
{{- $repo := dig "movers" "repository" dict $config }}
{{- if or $repo.nfs $repo.pvc }}
{{- $mount := default "/repository" $repo.mountPath | trimSuffix "/" }}
{{- range $source := dig "catalog" "sources" list $config }}
{{- $path := dig "filesystem" "path" "" $source }}
{{- if and $path (or (eq $path $mount) (hasPrefix (printf "%s/" $mount) $path)) }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/* A config duration ("500ms", "25s", "10m", "1h") in whole seconds, rounded up. */}}
{{- define "volsync-autorestore.durationSeconds" -}}
{{- $d := toString . }}
{{- if hasSuffix "ms" $d }}{{ div (add (trimSuffix "ms" $d | int) 999) 1000 }}
{{- else if hasSuffix "s" $d }}{{ trimSuffix "s" $d | int }}
{{- else if hasSuffix "m" $d }}{{ mul (trimSuffix "m" $d | int) 60 }}
{{- else if hasSuffix "h" $d }}{{ mul (trimSuffix "h" $d | int) 3600 }}
{{- else }}{{ fail (printf "not a duration: %q" $d) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds, checked: the kubelet counts the preStop sleep in the grace period, then
sends SIGTERM, and the server needs up to config.server.shutdown.timeout (default 25s) to drain
in-flight reviews; a shorter grace would SIGKILL it mid-review.
*/}}
{{- define "volsync-autorestore.terminationGracePeriodSeconds" -}}
{{- $config := include "volsync-autorestore.config" . | fromYaml }}
{{- $timeout := include "volsync-autorestore.durationSeconds" (dig "server" "shutdown" "timeout" "25s" $config) | int }}
{{- $needed := add (int .Values.preStopSleepSeconds) $timeout }}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) + config.server.shutdown.timeout (%ds), or in-flight reviews are cut off" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $timeout) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
