{{/*
Names, labels, content hashes and images.
*/}}

{{- define "llama-factory.name" -}}
{{- $root := required "llama-factory.name: root is required" .root -}}
{{- default $root.Chart.Name $root.Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llama-factory.fullname" -}}
{{- $root := required "llama-factory.fullname: root is required" .root -}}
{{- if $root.Values.fullnameOverride }}
{{- $root.Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default $root.Chart.Name $root.Values.nameOverride }}
{{- if contains $name $root.Release.Name }}
{{- $root.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" $root.Release.Name $name | trunc 63 | trimSuffix "-" }}
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
{{- $root := required "llama-factory.prefix: root is required" .root -}}
{{- $full := include "llama-factory.fullname" (dict "root" $root) }}
{{- if le (len $full) 30 }}
{{- $full }}
{{- else }}
{{- printf "%s-%s" ($full | trunc 25 | trimSuffix "-") (sha256sum $full | trunc 4) }}
{{- end }}
{{- end }}

{{- define "llama-factory.chart" -}}
{{- $root := required "llama-factory.chart: root is required" .root -}}
{{- printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "root" $ "component" "sft"). */}}
{{- define "llama-factory.selectorLabels" -}}
{{- $root := required "llama-factory.selectorLabels: root is required" .root -}}
app.kubernetes.io/name: {{ include "llama-factory.name" (dict "root" $root) | quote }}
app.kubernetes.io/instance: {{ $root.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end }}

{{/* Full labels; call with (dict "root" $ "component" "sft"). */}}
{{- define "llama-factory.labels" -}}
{{- $root := required "llama-factory.labels: root is required" .root -}}
{{ include "llama-factory.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: llama-factory
app.kubernetes.io/managed-by: {{ $root.Release.Service | quote }}
helm.sh/chart: {{ include "llama-factory.chart" (dict "root" $root) | quote }}
{{- with $root.Values.common.labels }}
{{ toYaml . }}
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
{{- $root := required "llama-factory.hashedName: root is required" .root -}}
{{- printf "%s-%s-%s" (include "llama-factory.prefix" (dict "root" $root)) .stage (include "llama-factory.contentHash" .) }}
{{- end }}

{{/*
The hash in a stage object's name (llama-factory.hashedName; same arguments): also the
stage's fingerprint, by which the stages after it in a release know its output
(_pipeline.tpl).
*/}}
{{- define "llama-factory.contentHash" -}}
{{- $root := required "llama-factory.contentHash: root is required" .root -}}
{{- $content := .content }}
{{- $common := $root.Values.common }}
{{- $queue := (include "llama-factory.scheduling" (dict "root" $root "block" (include "llama-factory.block" .stage) "gpus" 0) | fromJson).queue }}
{{- if or $common.podLabels $common.podAnnotations $queue }}
{{- $content = cat $content (toJson (list $common.podLabels $common.podAnnotations $queue)) }}
{{- end }}
{{- with $common.labels }}
{{- $content = cat $content (toJson .) }}
{{- end }}
{{- if has .stage (list "sft" "dpo") }}
{{- $content = cat $content (toJson (list $root.Values.training.workers $root.Values.training.restartPolicy)) }}
{{- end }}
{{- sha256sum $content | trunc 8 }}
{{- end }}

{{- define "llama-factory.stageName" -}}
{{- $root := required "llama-factory.stageName: root is required" .root -}}
{{- printf "%s-%s" (include "llama-factory.prefix" (dict "root" $root)) .stage }}
{{- end }}

{{/*
Image reference; call with (dict "root" $ "image" .Values.images.vllm), plus "block" (a stage's
values block: sft, serving, ...) whose `image` overrides it field by field. An override that
names another repository or tag drops the default's digest unless it gives its own.
*/}}
{{- define "llama-factory.image" -}}
{{- $root := required "llama-factory.image: root is required" .root -}}
{{- $image := .image }}
{{- if .block }}
{{- with (index $root.Values .block).image }}
{{- $image = deepCopy $image }}
{{- if or .repository .tag }}{{ $_ := set $image "digest" "" }}{{ end }}
{{- range $k, $x := . }}{{ if $x }}{{ $_ := set $image $k $x }}{{ end }}{{ end }}
{{- end }}
{{- end }}
{{- include "llama-factory.imageRef" (dict "root" $root "image" $image) }}
{{- end }}

{{- define "llama-factory.imageRef" -}}
{{- $root := required "llama-factory.imageRef: root is required" .root -}}
{{- $registry := default .image.registry $root.Values.common.imageRegistry }}
{{- if .image.digest }}
{{- printf "%s/%s@%s" $registry .image.repository .image.digest }}
{{- else }}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag }}
{{- end }}
{{- end }}
