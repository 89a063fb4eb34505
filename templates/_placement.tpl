{{/*
Where a pod runs and what it carries: the stage's values block, scheduling,
pod-level settings, pod labels and metadata, the T9k scheduler block.
*/}}

{{/*
The values block that holds a stage's settings (its `scheduling` and `image`): a stage,
component or hash name in, a key of .Values out; "" (common settings only) for the helm
test Pod. A pure value helper: takes the name itself.
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
{{- $root := required "llama-factory.scheduling: root is required" .root -}}
{{- $common := $root.Values.common }}
{{- $stageScheduling := dict }}
{{- if .block }}{{ $stageScheduling = default dict (index $root.Values .block).scheduling }}{{ end }}
{{- $gpu := and (ne $common.gpu.resourceName "") (gt (int .gpus) 0) }}
{{- $sel := dict }}
{{- range $selector := list $common.nodeSelector (ternary $common.gpu.nodeSelector dict $gpu) $stageScheduling.nodeSelector }}
{{- range $k, $x := $selector }}{{ $_ := set $sel $k $x }}{{ end }}
{{- end }}
{{- $tol := concat (default list $common.tolerations) (ternary (default list $common.gpu.tolerations) list $gpu) (default list $stageScheduling.tolerations) }}
{{- $out := dict "nodeSelector" $sel "tolerations" $tol "affinity" (default $common.affinity $stageScheduling.affinity)
  "queue" (default $common.scheduler.queue $stageScheduling.queue) "priority" (ternary $common.scheduler.priority $stageScheduling.priority (kindIs "invalid" $stageScheduling.priority)) }}
{{- range $k := list "priorityClassName" "runtimeClassName" "serviceAccountName" }}
{{- $_ := set $out $k (default (get $common $k) (get $stageScheduling $k)) }}
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
{{- $root := required "llama-factory.podCommon: root is required" .root -}}
{{- $common := $root.Values.common }}
{{- $scheduling := include "llama-factory.scheduling" . | fromJson }}
{{- if and $scheduling.queue (not .t9k) }}
schedulerName: t9k-scheduler
{{- end }}
automountServiceAccountToken: {{ $common.automountServiceAccountToken }}
{{- with $common.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . | quote }}
  {{- end }}
{{- end }}
{{- with $scheduling.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $scheduling.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $scheduling.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- range $k := list "priorityClassName" "runtimeClassName" "serviceAccountName" }}
{{- with get $scheduling $k }}
{{ $k }}: {{ . | quote }}
{{- end }}
{{- end }}
{{- with $common.podSecurityContext }}
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
{{- $root := required "llama-factory.podLabels: root is required" .root -}}
{{- $common := $root.Values.common }}
{{- $block := ternary .block (include "llama-factory.block" .component) (hasKey . "block") }}
{{- $queue := (include "llama-factory.scheduling" (dict "root" $root "block" $block "gpus" 0) | fromJson).queue }}
{{- $extra := deepCopy (default dict $common.podLabels) }}
{{- if .versioned }}
{{ include "llama-factory.labels" . }}
{{- range $k, $_ := $common.labels }}{{ $_ := unset $extra $k }}{{ end }}
{{- else }}
{{ include "llama-factory.selectorLabels" . }}
app.kubernetes.io/part-of: llama-factory
app.kubernetes.io/managed-by: {{ $root.Release.Service | quote }}
{{- $extra = merge $extra (default dict $common.labels) }}
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
{{- $root := required "llama-factory.podMetadata: root is required" .root -}}
labels:
  {{- include "llama-factory.podLabels" . | nindent 2 }}
{{- $annotations := deepCopy (default dict $root.Values.common.podAnnotations) }}
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
{{- $root := required "llama-factory.t9kScheduler: root is required" .root -}}
{{- with include "llama-factory.scheduling" (dict "root" $root "block" .block "gpus" 0) | fromJson }}
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
