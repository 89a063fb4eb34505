{{/*
Pods: resources, quantities, environment, volumes, scheduling, labels and the Job pod builder every Job-based stage uses.
*/}}

{{/*
Quantities. The schema restricts memory to Mi/Gi/Ti and CPU to cores or
millicores so that the chart can compare them; these return integers, and
fail on anything else (a unit they do not know must not compare as 0).
*/}}
{{- define "llama-factory.mebibytes" -}}
{{- $q := toString . }}
{{- if not (regexMatch "^[0-9]+(Mi|Gi|Ti)$" $q) }}
{{- fail (printf "llama-factory.mebibytes: %q is not a memory quantity the chart compares (a whole number of Mi, Gi or Ti). Fix: write it as e.g. 512Mi, 16Gi or 1Ti." $q) }}
{{- end }}
{{- if hasSuffix "Ti" $q }}{{ mul (trimSuffix "Ti" $q | atoi) 1048576 }}
{{- else if hasSuffix "Gi" $q }}{{ mul (trimSuffix "Gi" $q | atoi) 1024 }}
{{- else }}{{ trimSuffix "Mi" $q | atoi }}
{{- end }}
{{- end }}

{{- define "llama-factory.millicores" -}}
{{- $q := toString . }}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?|[0-9]+m)$" $q) }}
{{- fail (printf "llama-factory.millicores: %q is not a CPU quantity the chart compares (cores such as 8 or 0.5, or millicores such as 500m). Fix: write it in one of those forms." $q) }}
{{- end }}
{{- if hasSuffix "m" $q }}{{ trimSuffix "m" $q | atoi }}
{{- else }}{{ mulf (float64 $q) 1000 | int }}
{{- end }}
{{- end }}

{{/*
Container resources; call with (dict "resources" .Values.x.resources "gpus" N "root" $).
*/}}
{{- define "llama-factory.resources" -}}
{{- $gpuName := .root.Values.common.gpu.resourceName }}
requests:
  cpu: {{ .resources.requests.cpu | quote }}
  memory: {{ .resources.requests.memory | quote }}
  {{- if and $gpuName (gt (int .gpus) 0) }}
  {{ $gpuName }}: {{ .gpus | int }}
  {{- end }}
  {{- if and .rdma .rdma.enabled }}
  {{ .rdma.resourceName }}: 1
  {{- end }}
limits:
  cpu: {{ .resources.limits.cpu | quote }}
  memory: {{ .resources.limits.memory | quote }}
  {{- if and $gpuName (gt (int .gpus) 0) }}
  {{ $gpuName }}: {{ .gpus | int }}
  {{- end }}
  {{- if and .rdma .rdma.enabled }}
  {{ .rdma.resourceName }}: 1
  {{- end }}
{{- end }}

{{/*
Environment shared by every container: Hugging Face endpoint, cache and token
(by reference only), then common.extraEnv. Call with the root context.
*/}}
{{- define "llama-factory.env" -}}
- name: HF_HOME
  value: {{ include "llama-factory.abs" (list . (include "llama-factory.paths" . | fromYaml).hfHome) | quote }}
{{- with .Values.common.huggingface.endpoint }}
- name: HF_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.common.huggingface.existingSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.common.huggingface.tokenKey | quote }}
{{- end }}
{{- range $name, $v := .Values.common.extraEnv }}
- name: {{ $name | quote }}
  {{- if kindIs "map" $v }}
  {{- toYaml $v | nindent 2 }}
  {{- else }}
  value: {{ $v | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Volumes of a stage pod: the workspace PVC, /dev/shm sized, optional config
ConfigMap, then common.extraVolumes. Call with
(dict "root" $ "shmSize" "16Gi" "configMap" "name-or-empty").
*/}}
{{- define "llama-factory.volumes" -}}
- name: workspace
  persistentVolumeClaim:
    claimName: {{ include "llama-factory.claimName" .root | quote }}
- name: tmp
  emptyDir: {}
{{- if .shmSize }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .shmSize }}
{{- end }}
{{- if .configMap }}
- name: config
  configMap:
    name: {{ .configMap }}
{{- end }}
{{- range $name, $v := .root.Values.common.extraVolumes }}
- name: {{ $name | quote }}
  {{- toYaml $v.source | nindent 2 }}
{{- end }}
{{- end }}

{{/* Mounts matching llama-factory.volumes; same arguments plus "configPath". */}}
{{- define "llama-factory.volumeMounts" -}}
- name: workspace
  mountPath: {{ .root.Values.storage.mountPath }}
- name: tmp
  mountPath: /tmp
{{- if .shmSize }}
- name: dshm
  mountPath: /dev/shm
{{- end }}
{{- if .configMap }}
- name: config
  mountPath: {{ .configPath }}
  readOnly: true
{{- end }}
{{- range $name, $v := .root.Values.common.extraVolumes }}
- name: {{ $name | quote }}
  mountPath: {{ $v.mountPath }}
  {{- if $v.readOnly }}
  readOnly: true
  {{- end }}
{{- end }}
{{- end }}

{{/*
The values block that holds a stage's settings (its `scheduling` and `image`): a stage,
component or hash name in, a key of .Values out; "" (common settings only) for the helm test Pod.
*/}}
{{- define "llama-factory.block" -}}
{{- get (dict "workspace" "download" "download" "download" "notebook" "notebook" "sft" "sft" "dpo" "dpo"
  "merge-sft" "merge" "merge-dpo" "merge" "eval" "eval" "serve" "serving") (regexReplaceAll "^eval-.*$" . "eval") }}
{{- end }}

{{/*
Where a pod runs, as JSON: common's settings, then common.gpu's node selector and tolerations
when the pod requests GPUs, then the stage's `scheduling` (its block, llama-factory.block).
Node selectors merge (the stage wins a key), tolerations add up, the stage's affinity,
class names, service account and queue replace common's. Call with (dict "root" $ "block"
"sft" "gpus" N).
*/}}
{{- define "llama-factory.scheduling" -}}
{{- $c := .root.Values.common }}
{{- $s := dict }}
{{- if .block }}{{ $s = default dict (index .root.Values .block).scheduling }}{{ end }}
{{- $gpu := and (ne $c.gpu.resourceName "") (gt (int .gpus) 0) }}
{{- $sel := dict }}
{{- range $m := list $c.nodeSelector (ternary $c.gpu.nodeSelector dict $gpu) $s.nodeSelector }}
{{- range $k, $x := $m }}{{ $_ := set $sel $k $x }}{{ end }}
{{- end }}
{{- $tol := concat (default list $c.tolerations) (ternary (default list $c.gpu.tolerations) list $gpu) (default list $s.tolerations) }}
{{- $out := dict "nodeSelector" $sel "tolerations" $tol "affinity" (default $c.affinity $s.affinity)
  "queue" (default $c.scheduler.queue $s.queue) "priority" (ternary $c.scheduler.priority $s.priority (kindIs "invalid" $s.priority)) }}
{{- range $k := list "priorityClassName" "runtimeClassName" "serviceAccountName" }}
{{- $_ := set $out $k (default (get $c $k) (get $s $k)) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Pod-level settings every stage shares (scheduling, pull secrets, security).
Call with (dict "root" $ "t9k" true "block" "sft" "gpus" N) — t9k: the pod
belongs to a T9k resource that carries its own queue, so no schedulerName is
set here; block and gpus: llama-factory.scheduling.
*/}}
{{- define "llama-factory.podCommon" -}}
{{- $c := .root.Values.common }}
{{- $s := include "llama-factory.scheduling" . | fromJson }}
{{- if and $s.queue (not .t9k) }}
schedulerName: t9k-scheduler
{{- end }}
automountServiceAccountToken: {{ $c.automountServiceAccountToken }}
{{- with $c.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . | quote }}
  {{- end }}
{{- end }}
{{- with $s.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- range $k := list "priorityClassName" "runtimeClassName" "serviceAccountName" }}
{{- with get $s $k }}
{{ $k }}: {{ . | quote }}
{{- end }}
{{- end }}
{{- with $c.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Labels of a pod: the chart's labels that stay put across chart versions (no
helm.sh/chart, no app.kubernetes.io/version: a Job's pod template is
immutable, so a chart upgrade that relabelled it would fail), the T9k queue
label for pods the T9k scheduler places directly, and common.podLabels. Call
with (dict "root" $ "component" "sft" "t9k" bool); "versioned" true keeps
the version labels (a bare Pod such as the helm test's, created anew each run).
The queue is the stage's (llama-factory.scheduling; "block" when the component
does not name it). common.labels and common.podLabels follow; a key in both
takes common.podLabels' value (a rule refuses two different values).
*/}}
{{- define "llama-factory.podLabels" -}}
{{- $c := .root.Values.common }}
{{- $block := ternary .block (include "llama-factory.block" .component) (hasKey . "block") }}
{{- $queue := (include "llama-factory.scheduling" (dict "root" .root "block" $block "gpus" 0) | fromJson).queue }}
{{- $extra := deepCopy (default dict $c.podLabels) }}
{{- if .versioned }}
{{ include "llama-factory.labels" . }}
{{- range $k, $_ := $c.labels }}{{ $_ := unset $extra $k }}{{ end }}
{{- else }}
{{ include "llama-factory.selectorLabels" . }}
app.kubernetes.io/part-of: llama-factory
app.kubernetes.io/managed-by: {{ .root.Release.Service | quote }}
{{- $extra = merge $extra (default dict $c.labels) }}
{{- end }}
{{- if and $queue (not .t9k) }}
scheduler.tensorstack.dev/queue: {{ $queue | quote }}
{{- end }}
{{- with $extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod template metadata; same arguments as llama-factory.podLabels, plus "fingerprint": a
producer stage's content hash, which its launcher reads through the downward API.
*/}}
{{- define "llama-factory.podMetadata" -}}
labels:
  {{- include "llama-factory.podLabels" . | nindent 2 }}
{{- $annotations := deepCopy (default dict .root.Values.common.podAnnotations) }}
{{- with .fingerprint }}
{{- $_ := set $annotations "llama-factory/fingerprint" . }}
{{- end }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* T9k scheduler block of a DeepSpeedJob (withPriority) or Notebook; "block": its stage's values block. */}}
{{- define "llama-factory.t9kScheduler" -}}
{{- with include "llama-factory.scheduling" (dict "root" .root "block" .block "gpus" 0) | fromJson }}
{{- if .queue }}
scheduler:
  t9kScheduler:
    queue: {{ .queue | quote }}
    {{- if $.withPriority }}
    priority: {{ .priority | int }}
    {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* backoffLimit, deadline and TTL of a batch/v1 Job from a stage block. */}}
{{- define "llama-factory.jobPolicy" -}}
backoffLimit: {{ .backoffLimit | int }}
{{- if not (kindIs "invalid" .activeDeadlineSeconds) }}
activeDeadlineSeconds: {{ .activeDeadlineSeconds | int }}
{{- end }}
{{- if not (kindIs "invalid" .ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ .ttlSecondsAfterFinished | int }}
{{- end }}
{{- end }}

{{/*
Pod spec of a one-container batch Job running the LLaMA-Factory image. Call
with (dict "root" $ "vctx" volumes-context "name" container-name "stage"
pipeline-stage "command" list "resources" r "gpus" n "attempts" n "env"
optional-extra-env-list): "attempts" (the Job's backoffLimit + 1) marks a
stage whose launcher records its outcome for the stages after it.
*/}}
{{- define "llama-factory.jobPodSpec" -}}
{{- $ := .root }}
{{- $block := include "llama-factory.block" .stage }}
{{- $image := include "llama-factory.image" (dict "root" $ "image" $.Values.images.llamaFactory "block" $block) }}
restartPolicy: Never
{{- include "llama-factory.podCommon" (dict "root" $ "t9k" false "block" $block "gpus" .gpus) | trim | nindent 0 }}
{{- with include "llama-factory.waitInit" (dict "root" $ "stage" .stage "image" $image "configPath" .vctx.configPath) }}
{{- . | nindent 0 }}
{{- end }}
containers:
  - name: {{ .name }}
    image: {{ $image }}
    imagePullPolicy: {{ $.Values.common.imagePullPolicy }}
    workingDir: {{ $.Values.storage.mountPath }}
    command:
      {{- toYaml .command | nindent 6 }}
    env:
      {{- include "llama-factory.env" $ | nindent 6 }}
      {{- include "llama-factory.homeEnv" $ | nindent 6 }}
      {{- if .attempts }}
      {{- include "llama-factory.producerEnv" (dict "attempts" .attempts) | nindent 6 }}
      {{- end }}
      {{- with .env }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    resources:
      {{- include "llama-factory.resources" (dict "root" $ "resources" .resources "gpus" .gpus) | trim | nindent 6 }}
    {{- with $.Values.common.containerSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      {{- include "llama-factory.volumeMounts" .vctx | nindent 6 }}
volumes:
  {{- include "llama-factory.volumes" .vctx | nindent 2 }}
{{- end }}

{{/* HOME for containers with a read-only root filesystem: caches go to the /tmp emptyDir. */}}
{{- define "llama-factory.homeEnv" -}}
- name: HOME
  value: /tmp
{{- end }}
