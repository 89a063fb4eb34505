{{/*
Cross-field rules of the pipeline: what a merge needs, and the paths one stage
writes and the next reads. (The stage list itself is the schema's: an unknown,
repeated or missing stage, or an empty list, never reaches the templates.)
*/}}

{{/*
Merge: only adapters can be merged; the merge needs the model in memory.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.merge" -}}
{{- $root := required "llama-factory.rules.merge: root is required" .root -}}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $card := float64 $values.common.gpu.memoryGiB }}
{{- $params := float64 $values.model.parametersBillion }}
{{- $errors := list }}
{{- if or (has "merge-sft" $values.stages) (has "merge-dpo" $values.stages) }}
{{- if eq $training.method "full" }}
{{- $errors = append $errors "stages: merge-sft and merge-dpo merge a LoRA adapter, but training.method=full writes a whole model that needs no merge. Fix: drop the merge stages (eval and serve read the full model directly) or train with lora/qlora." }}
{{- end }}
{{- $bf16GiB := mulf $params 2.0 }}
{{- if eq $values.merge.exportDevice "cpu" }}
{{- $have := divf (include "llama-factory.mebibytes" $values.merge.resources.limits.memory | float64) 1024.0 }}
{{- if lt $have (mulf $bf16GiB 2.0) }}
{{- $errors = append $errors (printf "merge.resources.limits.memory: a CPU merge holds the whole %vB model (model.parametersBillion) in bf16 (%.0f GiB) plus the merged copy being saved; %v is less than the %.0f GiB (2 x bf16) it needs. Fix: raise merge.resources.limits.memory (and requests) or merge on GPUs (merge.exportDevice=auto, merge.gpus)." $values.model.parametersBillion $bf16GiB $values.merge.resources.limits.memory (mulf $bf16GiB 2.0)) }}
{{- end }}
{{- else }}
{{- if lt (mulf (float64 $values.merge.gpus) $card) (mulf $bf16GiB 1.1) }}
{{- $errors = append $errors (printf "merge.gpus: merging on GPUs (merge.exportDevice=auto) needs the %.0f GiB bf16 model on the cards; %d x %v GiB (common.gpu.memoryGiB) is too little. Fix: raise merge.gpus or use merge.exportDevice=cpu." $bf16GiB (int $values.merge.gpus) $values.common.gpu.memoryGiB) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Paths the chart derives: what one stage writes, the next reads (and a run's identity).
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.ownedPaths" -}}
{{- $root := required "llama-factory.rules.ownedPaths: root is required" .root -}}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $errors := list }}
{{- $ownedPaths := list "output_dir" "model_name_or_path" "adapter_name_or_path" "dataset_dir" "export_dir" "deepspeed" }}
{{- range $where, $extra := dict "training" $training.extraArgs "sft" $values.sft.extraArgs "dpo" $values.dpo.extraArgs "merge" $values.merge.extraArgs }}
{{- range $key := $ownedPaths }}
{{- if hasKey $extra $key }}
{{- $errors = append $errors (printf "%s.extraArgs.%s: the chart sets %s itself; the stages after this one read the paths it derives from model.name, training.method and run, so a moved path silently breaks the chain. Fix: remove %s.extraArgs.%s; for a separate experiment set run=<name>." $where $key $key $where $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}
