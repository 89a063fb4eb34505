{{/*
Configs the training stages render: dataset_info.json and the DeepSpeed config.
*/}}

{{/*
dataset_info.json from the dataset registry; a relative file_name is made
absolute under data/ on the PVC (LLaMA-Factory joins dataset_dir with
file_name, and an absolute file_name wins the join).
*/}}
{{- define "llama-factory.datasetInfo" -}}
{{- $root := required "llama-factory.datasetInfo: root is required" .root -}}
{{- $paths := include "llama-factory.paths" (dict "root" $root) | fromYaml }}
{{- $out := dict }}
{{- range $name, $dataset := $root.Values.datasets }}
{{- $entry := deepCopy $dataset }}
{{- if and $entry.file_name (not (isAbs $entry.file_name)) }}
{{- $_ := set $entry "file_name" (include "llama-factory.abs" (dict "root" $root "path" (printf "%s/%s" $paths.data $entry.file_name))) }}
{{- end }}
{{- $_ := set $out $name $entry }}
{{- end }}
{{- toPrettyJson $out }}
{{- end }}

{{/* The DeepSpeed JSON of the training stages. */}}
{{- define "llama-factory.deepspeedConfig" -}}
{{- $root := required "llama-factory.deepspeedConfig: root is required" .root -}}
{{- $deepspeed := $root.Values.training.deepspeed }}
{{- $zeroStage := int $deepspeed.zeroStage }}
{{- $zero := dict "stage" $zeroStage }}
{{- if eq $zeroStage 3 }}
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
{{- else if ge $zeroStage 1 }}
{{- $zero = merge $zero (dict
  "allgather_partitions" true
  "allgather_bucket_size" 500000000
  "overlap_comm" false
  "reduce_scatter" true
  "reduce_bucket_size" 500000000
  "contiguous_gradients" true
  "round_robin_gradients" true) }}
{{- end }}
{{- if $deepspeed.offloadOptimizer }}
{{- $_ := set $zero "offload_optimizer" (dict "device" "cpu" "pin_memory" true) }}
{{- end }}
{{- if $deepspeed.offloadParams }}
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
{{- include "llama-factory.override" (dict "dst" $cfg "src" (deepCopy $deepspeed.extraConfig)) }}
{{- toPrettyJson $cfg }}
{{- end }}
