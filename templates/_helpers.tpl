{{/*
Names, labels and images.
*/}}

{{- define "llama-factory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llama-factory.fullname" -}}
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

{{/*
Prefix of every stage object: the fullname cut to 30 characters, so that
"<prefix>-<stage>-<hash>" stays under 52 characters and the pods and services
the T9k controllers derive from a job name stay under 63. A cut name keeps 4
characters of the full name's hash, so two long release names never collide.
*/}}
{{- define "llama-factory.prefix" -}}
{{- $full := include "llama-factory.fullname" . }}
{{- if le (len $full) 30 }}
{{- $full }}
{{- else }}
{{- printf "%s-%s" ($full | trunc 25 | trimSuffix "-") (sha256sum $full | trunc 4) }}
{{- end }}
{{- end }}

{{- define "llama-factory.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "root" $ "component" "sft"). */}}
{{- define "llama-factory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llama-factory.name" .root | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end }}

{{/* Full labels; call with (dict "root" $ "component" "sft"). */}}
{{- define "llama-factory.labels" -}}
{{ include "llama-factory.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: llama-factory
app.kubernetes.io/managed-by: {{ .root.Release.Service | quote }}
helm.sh/chart: {{ include "llama-factory.chart" .root | quote }}
{{- with .root.Values.common.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Image reference; call with (dict "root" $ "image" .Values.images.vllm), plus "block" (a stage's
values block: sft, serving, ...) whose `image` overrides it field by field. An override that
names another repository or tag drops the default's digest unless it gives its own.
*/}}
{{- define "llama-factory.image" -}}
{{- $image := .image }}
{{- if .block }}
{{- with (index .root.Values .block).image }}
{{- $image = deepCopy $image }}
{{- if or .repository .tag }}{{ $_ := set $image "digest" "" }}{{ end }}
{{- range $k, $x := . }}{{ if $x }}{{ $_ := set $image $k $x }}{{ end }}{{ end }}
{{- end }}
{{- end }}
{{- include "llama-factory.imageRef" (dict "root" .root "image" $image) }}
{{- end }}

{{- define "llama-factory.imageRef" -}}
{{- $registry := default .image.registry .root.Values.common.imageRegistry }}
{{- if .image.digest }}
{{- printf "%s/%s@%s" $registry .image.repository .image.digest }}
{{- else }}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag }}
{{- end }}
{{- end }}

{{/*
The path plan: every directory a stage reads or writes, relative to the PVC
root, computed in this one place so that the output of one stage is by
construction the input of the next:
  base → sft (adapter, or full model) → sftModel (merged) → dpo → dpoModel.
LoRA's merged models are models/<name>-sft and -dpo; another method's carry
it (models/<name>-qlora-sft), so two methods on one PVC never overwrite each
other's models or evaluations.
Returns YAML; use with fromYaml.
*/}}
{{- define "llama-factory.paths" -}}
{{- $m := .Values.model.name }}
{{- $method := .Values.training.method }}
{{- $full := eq $method "full" }}
{{- /* A named run gets its own directory under each output (values: run). */}}
{{- $run := .Values.run | default "" }}
{{- $saves := ternary (printf "saves/%s/%s" $m $method) (printf "saves/%s/%s/%s" $m $method $run) (eq $run "") }}
{{- $sft := printf "%s/sft" $saves }}
{{- $dpo := printf "%s/dpo" $saves }}
{{- /* Merged models and evaluations of QLoRA (or full) runs never share a directory with LoRA's. */}}
{{- $tag := printf "%s%s" (ternary "" (printf "-%s" $method) (eq $method "lora")) (ternary "" (printf "-%s" $run) (eq $run "")) }}
base: {{ printf "models/%s" $m }}
sft: {{ $sft }}
sftModel: {{ ternary $sft (printf "models/%s%s-sft" $m $tag) $full }}
dpo: {{ $dpo }}
dpoModel: {{ ternary $dpo (printf "models/%s%s-dpo" $m $tag) $full }}
data: data
hfHome: .cache/huggingface
eval: {{ printf "evals/%s%s" $m $tag }}
{{- end }}

{{/*
What the eval and serve stages read for a model choice (base, sft, dpo).
Call with (dict "root" $ "model" "dpo" "lora" false). Returns YAML with
`model` (the directory vLLM / lm-eval loads) and, for lora, `adapter`.
*/}}
{{- define "llama-factory.modelSource" -}}
{{- $p := include "llama-factory.paths" .root | fromYaml }}
{{- if .lora }}
{{- if eq .model "sft" }}
model: {{ $p.base }}
adapter: {{ $p.sft }}
{{- else }}
model: {{ $p.sftModel }}
adapter: {{ $p.dpo }}
{{- end }}
{{- else }}
model: {{ get $p (ternary "base" (printf "%sModel" .model) (eq .model "base")) }}
{{- end }}
{{- end }}

{{/* Absolute path on the PVC; call with (list $ "models/x"). */}}
{{- define "llama-factory.abs" -}}
{{- printf "%s/%s" (index . 0).Values.storage.mountPath (index . 1) }}
{{- end }}

{{/* Where a stage's ConfigMap (its LLaMA-Factory config, scripts) is mounted. */}}
{{- define "llama-factory.configPath" -}}
/etc/llama-factory
{{- end }}

{{- define "llama-factory.claimName" -}}
{{- default .Values.storage.name .Values.storage.existingClaim }}
{{- end }}

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

{{/*
Renders a map of command-line flags as a list of "--flag=value" arguments
(true: a bare "--flag"; false or null: left out), sorted by flag.
*/}}
{{- define "llama-factory.flagArgs" -}}
{{- range $k, $v := . }}
{{- if kindIs "bool" $v }}
{{- if $v }}
- {{ printf "--%s" $k | quote }}
{{- end }}
{{- else if kindIs "float64" $v }}
- {{ printf "--%s=%s" $k (include "llama-factory.scalar" $v) | quote }}
{{- else if not (kindIs "invalid" $v) }}
- {{ printf "--%s=%v" $k $v | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of a stage object with a short hash of its content appended, so that a
changed spec makes a new object instead of an immutable-field error on
`helm upgrade`. Call with (dict "root" $ "stage" "sft" "content" $text).
Also hashed, beside the caller's pod spec: the pod template's metadata (extra
labels and annotations, the T9k queue label; immutable in a Job too) while
set, and a DeepSpeedJob's worker block (replicas: the world size).
*/}}
{{- define "llama-factory.hashedName" -}}
{{- printf "%s-%s-%s" (include "llama-factory.prefix" .root) .stage (include "llama-factory.contentHash" .) }}
{{- end }}

{{/*
The hash in a stage object's name (llama-factory.hashedName; same arguments): also the
stage's fingerprint, by which the stages after it in a release know its output
(_pipeline.tpl).
*/}}
{{- define "llama-factory.contentHash" -}}
{{- $content := .content }}
{{- $c := .root.Values.common }}
{{- $queue := (include "llama-factory.scheduling" (dict "root" .root "block" (include "llama-factory.block" .stage) "gpus" 0) | fromJson).queue }}
{{- if or $c.podLabels $c.podAnnotations $queue }}
{{- $content = cat $content (toJson (list $c.podLabels $c.podAnnotations $queue)) }}
{{- end }}
{{- with $c.labels }}
{{- $content = cat $content (toJson .) }}
{{- end }}
{{- if has .stage (list "sft" "dpo") }}
{{- $content = cat $content (toJson (list .root.Values.training.workers .root.Values.training.restartPolicy)) }}
{{- end }}
{{- sha256sum $content | trunc 8 }}
{{- end }}

{{- define "llama-factory.stageName" -}}
{{- printf "%s-%s" (include "llama-factory.prefix" .root) .stage }}
{{- end }}

{{/*
A value as YAML that Python's yaml.safe_load reads back with the same type:
integral numbers as integers, other floats in plain decimal notation (Go's
`1e-05` would load as a string), anything else as JSON (a YAML subset).
*/}}
{{- define "llama-factory.scalar" -}}
{{- if kindIs "float64" . }}
{{- if eq (floor .) . }}{{ printf "%.0f" . }}{{ else }}{{ regexReplaceAll "0+$" (printf "%.15f" .) "" }}{{ end }}
{{- else }}
{{- toJson . }}
{{- end }}
{{- end }}

{{/*
A LLaMA-Factory config file. Call with (dict "sections" (list (list "model"
(list "key" …)) …) "values" $dict): keys are printed in section order, then
any key no section names under "### extra" (the escape hatch), so an override
replaces a key instead of repeating it.
*/}}
{{- define "llama-factory.lfYaml" -}}
{{- $left := deepCopy .values }}
{{- range $section := .sections }}
{{- $printed := false }}
{{- range $key := index $section 1 }}
{{- if hasKey $left $key }}
{{- if not $printed }}
### {{ index $section 0 }}
{{- $printed = true }}
{{- end }}
{{ $key }}: {{ include "llama-factory.scalar" (index $left $key) }}
{{- $_ := unset $left $key }}
{{- end }}
{{- end }}
{{- end }}
{{- if $left }}
### extra (training.extraArgs, <stage>.extraArgs, merge.extraArgs)
{{- range $key, $v := $left }}
{{ $key }}: {{ include "llama-factory.scalar" $v }}
{{- end }}
{{- end }}
{{- end }}

{{/*
dataset_info.json from the dataset registry; a relative file_name is made
absolute under data/ on the PVC (LLaMA-Factory joins dataset_dir with
file_name, and an absolute file_name wins the join).
*/}}
{{- define "llama-factory.datasetInfo" -}}
{{- $p := include "llama-factory.paths" . | fromYaml }}
{{- $out := dict }}
{{- range $name, $d := .Values.datasets }}
{{- $e := deepCopy $d }}
{{- if and $e.file_name (not (isAbs $e.file_name)) }}
{{- $_ := set $e "file_name" (include "llama-factory.abs" (list $ (printf "%s/%s" $p.data $e.file_name))) }}
{{- end }}
{{- $_ := set $out $name $e }}
{{- end }}
{{- toPrettyJson $out }}
{{- end }}

{{/* The DeepSpeed JSON of the training stages. */}}
{{- define "llama-factory.deepspeedConfig" -}}
{{- $d := .Values.training.deepspeed }}
{{- $z := int $d.zeroStage }}
{{- $zero := dict "stage" $z }}
{{- if eq $z 3 }}
{{- $zero = merge $zero (dict
  "overlap_comm" false
  "contiguous_gradients" true
  "sub_group_size" 1000000000
  "reduce_bucket_size" "auto"
  "stage3_prefetch_bucket_size" "auto"
  "stage3_param_persistence_threshold" "auto"
  "stage3_max_live_parameters" 1000000000
  "stage3_max_reuse_distance" 1000000000
  "stage3_gather_16bit_weights_on_model_save" true) }}
{{- else if ge $z 1 }}
{{- $zero = merge $zero (dict
  "allgather_partitions" true
  "allgather_bucket_size" 500000000
  "overlap_comm" false
  "reduce_scatter" true
  "reduce_bucket_size" 500000000
  "contiguous_gradients" true
  "round_robin_gradients" true) }}
{{- end }}
{{- if $d.offloadOptimizer }}
{{- $_ := set $zero "offload_optimizer" (dict "device" "cpu" "pin_memory" true) }}
{{- end }}
{{- if $d.offloadParams }}
{{- $_ := set $zero "offload_param" (dict "device" "cpu" "pin_memory" true) }}
{{- end }}
{{- $cfg := dict
  "train_batch_size" "auto"
  "train_micro_batch_size_per_gpu" "auto"
  "gradient_accumulation_steps" "auto"
  "gradient_clipping" "auto"
  "zero_allow_untested_optimizer" true
  "fp16" (dict "enabled" "auto" "loss_scale" 0 "loss_scale_window" 1000 "initial_scale_power" 16 "hysteresis" 2 "min_loss_scale" 1)
  "bf16" (dict "enabled" "auto")
  "zero_optimization" $zero }}
{{- include "llama-factory.override" (dict "dst" $cfg "src" (deepCopy $d.extraConfig)) }}
{{- toPrettyJson $cfg }}
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

{{/* The model name clients of the serve stage ask for. */}}
{{- define "llama-factory.servedModelName" -}}
{{- if .Values.serving.servedModelName }}
{{- .Values.serving.servedModelName }}
{{- else }}
{{- $src := include "llama-factory.modelSource" (dict "root" . "model" .Values.serving.model "lora" false) | fromYaml }}
{{- base $src.model }}
{{- end }}
{{- end }}

{{/*
Probe of vLLM's /v1/models. With an API key the endpoint needs the key, which
must not appear in the pod spec, so an exec probe reads it from the
environment; without one a plain httpGet does.
*/}}
{{- define "llama-factory.modelsProbe" -}}
{{- if .Values.serving.apiKey.existingSecret }}
exec:
  command:
    - python3
    - -c
    - |
      import os, urllib.request
      req = urllib.request.Request("http://127.0.0.1:8000/v1/models",
                                   headers={"Authorization": "Bearer " + os.environ["VLLM_API_KEY"]})
      urllib.request.urlopen(req, timeout=4).read()
{{- else }}
httpGet:
  path: /v1/models
  port: http
{{- end }}
{{- end }}

{{/* HOME for containers with a read-only root filesystem: caches go to the /tmp emptyDir. */}}
{{- define "llama-factory.homeEnv" -}}
- name: HOME
  value: /tmp
{{- end }}

{{/*
Deep-merges .src into the map .dst in place, .src winning — false and 0
included (sprig's mergeOverwrite skips such "empty" values, so an escape hatch
could not turn a setting off). Call with (dict "dst" $map "src" $overrides).
*/}}
{{- define "llama-factory.override" -}}
{{- $dst := .dst }}
{{- range $k, $v := .src }}
{{- if and (kindIs "map" $v) (kindIs "map" (get $dst $k)) }}
{{- include "llama-factory.override" (dict "dst" (get $dst $k) "src" $v) }}
{{- else }}
{{- $_ := set $dst $k $v }}
{{- end }}
{{- end }}
{{- end }}
