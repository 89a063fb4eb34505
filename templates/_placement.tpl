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
{{- $c := $root.Values.common }}
{{- $s := dict }}
{{- if .block }}{{ $s = default dict (index $root.Values .block).scheduling }}{{ end }}
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
{{- $root := required "llama-factory.podCommon: root is required" .root -}}
{{- $c := $root.Values.common }}
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
{{- $root := required "llama-factory.podLabels: root is required" .root -}}
{{- $c := $root.Values.common }}
{{- $block := ternary .block (include "llama-factory.block" .component) (hasKey . "block") }}
{{- $queue := (include "llama-factory.scheduling" (dict "root" $root "block" $block "gpus" 0) | fromJson).queue }}
{{- $extra := deepCopy (default dict $c.podLabels) }}
{{- if .versioned }}
{{ include "llama-factory.labels" . }}
{{- range $k, $_ := $c.labels }}{{ $_ := unset $extra $k }}{{ end }}
{{- else }}
{{ include "llama-factory.selectorLabels" . }}
app.kubernetes.io/part-of: llama-factory
app.kubernetes.io/managed-by: {{ $root.Release.Service | quote }}
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
