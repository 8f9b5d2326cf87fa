{{/* Names, labels and the pieces the bot and worker pods share. */}}

{{- define "rollbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rollbot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "rollbot.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "rollbot.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollbot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "rollbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rollbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollbot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rollbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "rollbot.bundledRedis" -}}
{{- if not (or .Values.redis.url .Values.redis.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "rollbot.redisName" -}}
{{- printf "%s-redis" (include "rollbot.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The bundled Redis's config file. Persistence is the append-only file, fsynced once
a second (redis.bundled.appendfsync); RDB snapshots are off (the AOF, with its RDB
preamble after a rewrite, is the one copy). noeviction: past maxmemory Redis
refuses writes rather than dropping a queued job or a lock.
*/}}
{{- define "rollbot.redisConf" -}}
{{- $redis := .Values.redis.bundled -}}
port 6379
bind * -::*
protected-mode {{ ternary "yes" "no" $redis.auth.enabled }}
appendonly yes
appendfsync {{ $redis.appendfsync }}
aof-use-rdb-preamble yes
save ""
maxmemory {{ $redis.maxmemory }}
maxmemory-policy noeviction
{{- end -}}

{{/* The Secret and key holding the bundled Redis's password: the user's, or the chart's own. */}}
{{- define "rollbot.redisPasswordSecret" -}}
{{- .Values.redis.bundled.auth.existingSecret | default (include "rollbot.redisName" .) -}}
{{- end -}}

{{- define "rollbot.redisPasswordKey" -}}
{{- if .Values.redis.bundled.auth.existingSecret -}}
{{- .Values.redis.bundled.auth.existingSecretKey -}}
{{- else -}}
REDIS_PASSWORD
{{- end -}}
{{- end -}}

{{/*
The Helm releases rollbot may roll back, as a JSON list of {name, namespace}:
strategies.helm.releases, and every service of the config with strategy helm
(its release, or its own name; its namespace, or the config's default).
*/}}
{{- define "rollbot.helmReleases" -}}
{{- $releases := list -}}
{{- range .Values.strategies.helm.releases -}}
{{- $releases = append $releases (dict "name" .name "namespace" .namespace) -}}
{{- end -}}
{{- range $service, $entry := .Values.config.services | default dict -}}
{{- if eq (($entry | default dict).strategy | default "") "helm" -}}
{{- $namespace := $entry.namespace | default $.Values.config.default_namespace | default "default" -}}
{{- $releases = append $releases (dict "name" ($entry.release | default $service) "namespace" $namespace) -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $releases) -}}
{{- end -}}

{{/*
The namespaces the ServiceAccount gets a Role in, as a JSON list: rbac.namespaces,
or else every namespace the config names.
*/}}
{{- define "rollbot.rbacNamespaces" -}}
{{- $namespaces := list -}}
{{- if .Values.rbac.namespaces -}}
{{- $namespaces = .Values.rbac.namespaces -}}
{{- else -}}
{{- $namespaces = .Values.config.namespaces | default list -}}
{{- range $_, $env := .Values.config.environments | default dict -}}
{{- $namespaces = concat $namespaces ($env.namespaces | default list) -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $namespaces) -}}
{{- end -}}

{{/*
What rollbot does in the cluster, and nothing more (bot/kube.py is the list):
read a Deployment, its ReplicaSets (the history) and watch the rollout; patch
it back; assess it from its pods, their logs and Warning events; back up the
Services, ConfigMaps and autoscalers around it; switch a blue-green Service's
selector, restore a ConfigMap, relabel pods out of a Service. No create, no delete.
The Helm strategy's rights (release Secrets) are in helm-rbac.yaml, only where its
releases are.
*/}}
{{- define "rollbot.rules" -}}
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, patch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
- apiGroups: [""]
  resources: [pods, events, services]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/log, configmaps]
  verbs: [get]
# Blue-green switches a Service's selector and reads its Endpoints; config restores a
# ConfigMap; divert relabels pods.
- apiGroups: [""]
  resources: [services, endpoints]
  verbs: [get]
- apiGroups: [""]
  resources: [services, configmaps, pods]
  verbs: [patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list]
{{- if include "rollbot.migrationsEnabled" . }}
# Schema steps (a service's migrations:): the backup, downgrade and check Jobs are
# created, followed (their pods listed, their logs read: above), and deleted when
# they did not end in time (so that a downgrade cannot start after rollbot gave up).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, get, delete]
{{- end }}
{{- if .Values.strategies.argoRollouts.enabled }}
# Argo Rollouts: read a Rollout and undo its spec (patch), abort it (the status
# subresource, as `kubectl argo rollouts abort`), read its AnalysisRuns' results.
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, patch]
- apiGroups: [argoproj.io]
  resources: [rollouts/status]
  verbs: [patch]
- apiGroups: [argoproj.io]
  resources: [analysisruns]
  verbs: [list]
{{- end }}
{{- end -}}

{{/* "true" when a service of the catalog declares its database migrations. */}}
{{- define "rollbot.migrationsEnabled" -}}
{{- $on := false -}}
{{- range $_, $entry := .Values.config.services | default dict -}}
{{- if ($entry | default dict).migrations -}}
{{- $on = true -}}
{{- end -}}
{{- end -}}
{{- if $on -}}true{{- end -}}
{{- end -}}

{{/* Pod settings the bot and worker share. */}}
{{- define "rollbot.podSpec" -}}
serviceAccountName: {{ include "rollbot.serviceAccountName" . }}
automountServiceAccountToken: true
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: config
    configMap:
      name: {{ include "rollbot.fullname" . }}
  {{- if .Values.reportTemplates }}
  - name: report-templates
    configMap:
      name: {{ include "rollbot.fullname" . }}-templates
  {{- end }}
  {{- with .Values.gitops.tokenSecret }}
  # The token git pushes with (services.*.git.token_file: /etc/rollbot/git/token).
  - name: git-token
    secret:
      secretName: {{ .name }}
      defaultMode: 0400
      items:
        - key: {{ .key }}
          path: token
  {{- end }}
  # The root filesystem is read-only; helm and Python may want a scratch folder.
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end -}}

{{- define "rollbot.volumeMounts" -}}
- name: config
  mountPath: /etc/rollbot/config
  readOnly: true
{{- if .Values.reportTemplates }}
- name: report-templates
  mountPath: /etc/rollbot/templates
  readOnly: true
{{- end }}
{{- if .Values.gitops.tokenSecret }}
- name: git-token
  mountPath: /etc/rollbot/git
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "rollbot.env" -}}
- name: ROLLBOT_CONFIG
  value: /etc/rollbot/config/config.yaml
- name: HOME
  value: /tmp
{{- if .Values.storeKey.enabled }}
- name: ROLLBOT_STORE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storeKey.existingSecret | default (printf "%s-store-key" (include "rollbot.fullname" .)) }}
      key: ROLLBOT_STORE_KEY
{{- end }}
- name: SLACK_BOT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.slack.existingSecret }}
      key: {{ .Values.slack.botTokenKey }}
{{- if and .Values.notify.keys (not .Values.notify.existingSecret) }}
{{- fail "notify.keys needs notify.existingSecret: the Secret that holds them" }}
{{- end }}
{{- range .Values.notify.keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.notify.existingSecret }}
      key: {{ . }}
{{- end }}
{{- if .Values.slack.apiUrl }}
- name: SLACK_API_URL
  value: {{ .Values.slack.apiUrl | quote }}
{{- end }}
{{- if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- else if .Values.redis.bundled.auth.enabled }}
{{- /* Kubernetes expands $(REDIS_PASSWORD) when it starts the container: the pod spec
       shows the reference, never the password. */}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "rollbot.redisPasswordSecret" . }}
      key: {{ include "rollbot.redisPasswordKey" . }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "rollbot.redisName" .) | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "redis://%s:6379/0" (include "rollbot.redisName" .) | quote }}
{{- end }}
{{- end -}}
