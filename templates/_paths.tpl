{{/*
Paths on the shared PVC and where each stage's model comes from.
*/}}

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
{{- $root := required "llama-factory.paths: root is required" .root -}}
{{- $modelName := $root.Values.model.name }}
{{- $method := $root.Values.training.method }}
{{- $full := eq $method "full" }}
{{- /* A named run gets its own directory under each output (values: run). */}}
{{- $run := $root.Values.run | default "" }}
{{- $saves := ternary (printf "saves/%s/%s" $modelName $method) (printf "saves/%s/%s/%s" $modelName $method $run) (eq $run "") }}
{{- $sft := printf "%s/sft" $saves }}
{{- $dpo := printf "%s/dpo" $saves }}
{{- /* Merged models and evaluations of QLoRA (or full) runs never share a directory with LoRA's. */}}
{{- $tag := printf "%s%s" (ternary "" (printf "-%s" $method) (eq $method "lora")) (ternary "" (printf "-%s" $run) (eq $run "")) }}
base: {{ printf "models/%s" $modelName }}
sft: {{ $sft }}
sftModel: {{ ternary $sft (printf "models/%s%s-sft" $modelName $tag) $full }}
dpo: {{ $dpo }}
dpoModel: {{ ternary $dpo (printf "models/%s%s-dpo" $modelName $tag) $full }}
data: data
hfHome: .cache/huggingface
eval: {{ printf "evals/%s%s" $modelName $tag }}
{{- end }}

{{/*
What the eval and serve stages read for a model choice (base, sft, dpo).
Call with (dict "root" $ "model" "dpo" "lora" false). Returns YAML with
`model` (the directory vLLM / lm-eval loads) and, for lora, `adapter`.
*/}}
{{- define "llama-factory.modelSource" -}}
{{- $root := required "llama-factory.modelSource: root is required" .root -}}
{{- $paths := include "llama-factory.paths" (dict "root" $root) | fromYaml }}
{{- if .lora }}
{{- if eq .model "sft" }}
model: {{ $paths.base }}
adapter: {{ $paths.sft }}
{{- else }}
model: {{ $paths.sftModel }}
adapter: {{ $paths.dpo }}
{{- end }}
{{- else }}
model: {{ get $paths (ternary "base" (printf "%sModel" .model) (eq .model "base")) }}
{{- end }}
{{- end }}

{{/* Absolute path on the PVC; call with (dict "root" $ "path" "models/x"). */}}
{{- define "llama-factory.abs" -}}
{{- $root := required "llama-factory.abs: root is required" .root -}}
{{- printf "%s/%s" $root.Values.storage.mountPath (required "llama-factory.abs: path is required" .path) }}
{{- end }}

{{/* Where a stage's ConfigMap (its LLaMA-Factory config, scripts) is mounted. A constant: call with dict. */}}
{{- define "llama-factory.configPath" -}}
/etc/llama-factory
{{- end }}

{{- define "llama-factory.claimName" -}}
{{- $root := required "llama-factory.claimName: root is required" .root -}}
{{- default $root.Values.storage.name $root.Values.storage.existingClaim }}
{{- end }}
