{{/*
Model facts (files/models.yaml): what the chart knows about the model it
downloads, and the rules that hold the typed model.* values and the PVC size
to them.
*/}}

{{/*
The known model of the repository this release downloads (model.huggingfaceRepo,
or model.modelscopeRepo with model.source=modelscope), as JSON: its facts plus
"repo" and "field" (the value that named it); {} for a repository files/models.yaml
does not list.
*/}}
{{- define "llama-factory.knownModel" -}}
{{- $root := required "llama-factory.knownModel: root is required" .root -}}
{{- $model := $root.Values.model }}
{{- $hub := ternary "huggingface" "modelscope" (eq $model.source "huggingface") }}
{{- $field := ternary "model.huggingfaceRepo" "model.modelscopeRepo" (eq $model.source "huggingface") }}
{{- $repo := toString (ternary $model.huggingfaceRepo $model.modelscopeRepo (eq $model.source "huggingface")) }}
{{- $found := dict }}
{{- range $id, $facts := $root.Files.Get "files/models.yaml" | fromYaml }}
{{- range $listed := (get $facts $hub) }}
{{- if and (not $found) (eq (lower $listed) (lower $repo)) }}
{{- $found = merge (dict "id" $id "repo" $repo "field" $field) (omit $facts "huggingface" "modelscope") }}
{{- end }}
{{- end }}
{{- end }}
{{- $found | toJson }}
{{- end }}

{{/*
Errors (a JSON list) of the model facts: each model.* value the memory, merge,
eval and serve checks read must be the known model's (parametersBillion within
5 %). Call with (dict "root" $).
*/}}
{{- define "llama-factory.modelErrors" -}}
{{- $root := required "llama-factory.modelErrors: root is required" .root -}}
{{- $errors := list }}
{{- $known := include "llama-factory.knownModel" (dict "root" $root) | fromJson }}
{{- if $known }}
{{- $model := $root.Values.model }}
{{- $wrong := list }}
{{- $want := float64 $known.parametersBillion }}
{{- $off := subf (float64 $model.parametersBillion) $want }}
{{- if gt (mulf (maxf $off (mulf $off -1.0)) 20.0) $want }}
{{- $wrong = append $wrong (list "parametersBillion" $model.parametersBillion $known.parametersBillion) }}
{{- end }}
{{- range $key := list "numLayers" "hiddenSize" "numKeyValueHeads" "vocabSize" }}
{{- if ne (int (index $model $key)) (int (index $known $key)) }}
{{- $wrong = append $wrong (list $key (index $model $key) (index $known $key)) }}
{{- end }}
{{- end }}
{{- if $wrong }}
{{- /* One bullet, named by the first wrong field (a bullet names one field); the others in its text. */}}
{{- $fields := list }}
{{- $facts := list }}
{{- $sets := list }}
{{- range $mismatch := $wrong }}
{{- $fields = append $fields (printf "model.%s" (index $mismatch 0)) }}
{{- $facts = append $facts (printf "model.%s %v (not %v)" (index $mismatch 0) (index $mismatch 2) (index $mismatch 1)) }}
{{- $sets = append $sets (printf "model.%s=%v" (index $mismatch 0) (index $mismatch 2)) }}
{{- end }}
{{- $preset := "" }}
{{- with $known.preset }}{{ $preset = printf " (or -f %s, sized for it)" . }}{{ end }}
{{- $errors = append $errors (printf "%s: %s (%s) has %s; the chart's memory, merge, eval and serve checks would size the wrong model. Fix: --set %s%s, or set %s to the repository of the model you train (files/models.yaml lists the known ones)." (first $fields) $known.repo $known.field (join ", " $facts) (join "," $sets) $preset $known.field) }}
{{- end }}
{{- end }}
{{- $errors | toJson }}
{{- end }}

{{/*
Storage one pipeline needs on the PVC, in GiB, as JSON: the base model, the
merged SFT and DPO models (whole models after full fine-tuning), each
parameters x 2 bytes in bf16, and 10 % for adapters, checkpoints and datasets.
*/}}
{{- define "llama-factory.storageNeed" -}}
{{- $root := required "llama-factory.storageNeed: root is required" .root -}}
{{- $model := divf (mulf (float64 $root.Values.model.parametersBillion) 2000000000.0) 1073741824.0 }}
{{- dict "model" $model "need" (mulf $model 3.0 1.1) | toJson }}
{{- end }}

{{/*
Errors (a JSON list) of the PVC size: the PVC the workspace stage creates must
hold the pipeline's models (llama-factory.storageNeed). An existing claim
(storage.existingClaim) is not checked.
*/}}
{{- define "llama-factory.storageErrors" -}}
{{- $root := required "llama-factory.storageErrors: root is required" .root -}}
{{- $errors := list }}
{{- $storage := $root.Values.storage }}
{{- if and (has "workspace" $root.Values.stages) (not $storage.existingClaim) }}
{{- $need := include "llama-factory.storageNeed" (dict "root" $root) | fromJson }}
{{- $have := divf (include "llama-factory.mebibytes" $storage.size | float64) 1024.0 }}
{{- if lt $have $need.need }}
{{- $errors = append $errors (printf "storage.size: %v cannot hold the pipeline's models: the base model of %vB parameters (model.parametersBillion) is %.1f GiB in bf16, the merged SFT and DPO models as much again each, plus 10%% for adapters, checkpoints and datasets: %d GiB. Fix: set storage.size=%dGi or more (each run=<name> adds two merged models), or use a claim you sized yourself (storage.existingClaim)." $storage.size $root.Values.model.parametersBillion $need.model (int (ceil $need.need)) (int (ceil $need.need))) }}
{{- end }}
{{- end }}
{{- $errors | toJson }}
{{- end }}
