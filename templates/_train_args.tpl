{{/*
The LLaMA-Factory arguments of a training stage (sft or dpo), extraArgs
applied, as JSON: rendered into train.yaml, and read by the memory check
(llama-factory.trainMemory), so that the check sizes exactly what runs.
*/}}
{{- define "llama-factory.trainArgs" -}}
{{- $root := required "llama-factory.trainArgs: root is required" .root -}}
{{- $stage := .stage }}
{{- $paths := include "llama-factory.paths" (dict "root" $root) | fromYaml }}
{{- $training := $root.Values.training }}
{{- $stageValues := index $root.Values $stage }}
{{- $configPath := include "llama-factory.configPath" dict }}
{{- $batch := include "llama-factory.batchSplit" (dict "root" $root "stage" $stage) | fromJson }}
{{- /* Decimals go through float64: `--set sft.learningRate=0.00002` gives a string (_decimals.tpl). */}}
{{- $cfg := dict
  "model_name_or_path" (include "llama-factory.abs" (dict "root" $root "path" (ternary $paths.base $paths.sftModel (eq $stage "sft"))))
  "stage" $stage
  "do_train" true
  "finetuning_type" (ternary "full" "lora" (eq $training.method "full"))
  "deepspeed" (printf "%s/ds_config.json" $configPath)
  "flash_attn" $training.flashAttn
  "enable_liger_kernel" $training.enableLigerKernel
  "disable_gradient_checkpointing" (not (ternary true $training.gradientCheckpointing (kindIs "invalid" $training.gradientCheckpointing)))
  "dataset_dir" $configPath
  "dataset" (join "," $stageValues.datasets)
  "template" $root.Values.model.template
  "cutoff_len" (default $training.cutoffLen $stageValues.cutoffLen)
  "overwrite_cache" $training.overwriteCache
  "preprocessing_num_workers" $training.preprocessingNumWorkers
  "output_dir" (include "llama-factory.abs" (dict "root" $root "path" (get $paths $stage)))
  "logging_steps" $stageValues.loggingSteps
  "save_steps" $stageValues.saveSteps
  "plot_loss" $training.plotLoss
  "overwrite_output_dir" $training.overwriteOutputDir
  "report_to" $training.reportTo
  "per_device_train_batch_size" $batch.micro
  "gradient_accumulation_steps" $batch.accum
  "learning_rate" (float64 $stageValues.learningRate)
  "num_train_epochs" (float64 $stageValues.numTrainEpochs)
  "lr_scheduler_type" $stageValues.lrSchedulerType
  "warmup_ratio" (float64 $stageValues.warmupRatio)
  "bf16" $training.bf16
  "ddp_timeout" $training.ddpTimeout }}
{{- if not (kindIs "invalid" $training.saveTotalLimit) }}
{{- $_ := set $cfg "save_total_limit" $training.saveTotalLimit }}
{{- end }}
{{- if gt (int $stageValues.maxSteps) 0 }}
{{- $_ := set $cfg "max_steps" $stageValues.maxSteps }}
{{- end }}
{{- if ne $training.method "full" }}
{{- $_ := merge $cfg (dict "lora_target" $training.lora.target "lora_rank" $training.lora.rank "lora_dropout" (float64 $training.lora.dropout)) }}
{{- if not (kindIs "invalid" $training.lora.alpha) }}
{{- $_ := set $cfg "lora_alpha" $training.lora.alpha }}
{{- end }}
{{- end }}
{{- if eq $training.method "qlora" }}
{{- $_ := merge $cfg (dict "quantization_bit" $training.quantizationBits "quantization_method" "bnb") }}
{{- end }}
{{- if eq $stage "dpo" }}
{{- $_ := merge $cfg (dict "pref_beta" (float64 $stageValues.prefBeta) "pref_loss" $stageValues.prefLoss) }}
{{- else if $stageValues.packing }}
{{- $_ := set $cfg "neat_packing" true }}
{{- end }}
{{- if gt (float64 $stageValues.valSize) 0.0 }}
{{- $_ := merge $cfg (dict "val_size" (float64 $stageValues.valSize) "per_device_eval_batch_size" $stageValues.perDeviceEvalBatchSize "eval_strategy" "steps" "eval_steps" $stageValues.evalSteps) }}
{{- end }}
{{- include "llama-factory.override" (dict "dst" $cfg "src" (deepCopy $training.extraArgs)) }}
{{- include "llama-factory.override" (dict "dst" $cfg "src" (deepCopy $stageValues.extraArgs)) }}
{{- /* Defaults that follow the card (values left null): the fastest checkpointing (off, the
first K decoder layers in steps of 4, fewest first, then all layers), then the largest micro batch
dividing batchPerGpu, whose worst case fits; explicit values and extraArgs win. Checkpointing
is carried as the number of checkpointed layers: 0 off, L all, else the launcher's
checkpointed_layers key (files/launch.py applies it and removes it before LLaMA-Factory reads
the config). */}}
{{- $layers := int $root.Values.model.numLayers }}
{{- $kSet := not (kindIs "invalid" $training.gradientCheckpointingLayers) }}
{{- if and $kSet (not $cfg.disable_gradient_checkpointing) }}
{{- $_ := set $cfg "checkpointed_layers" (int $training.gradientCheckpointingLayers) }}
{{- end }}
{{- $extra := merge (deepCopy $stageValues.extraArgs) (deepCopy $training.extraArgs) }}
{{- $autoCkpt := and (kindIs "invalid" $training.gradientCheckpointing) (not $kSet) (not (hasKey $extra "disable_gradient_checkpointing")) }}
{{- $autoMicro := and $batch.auto (not (hasKey $extra "per_device_train_batch_size")) (not (hasKey $extra "gradient_accumulation_steps")) }}
{{- if or $autoCkpt $autoMicro }}
{{- $ckpts := list (ternary 0 (ternary (int $training.gradientCheckpointingLayers) $layers $kSet) $cfg.disable_gradient_checkpointing) }}
{{- if $autoCkpt }}
{{- $ckpts = list 0 }}
{{- /* Partial checkpointing only where its memory was measured (docs/gpu-card-defaults.md):
whole, unquantized weights on each GPU (ZeRO 0-2, not QLoRA). Under ZeRO-3 (layers gathered
as they run) and QLoRA (layers dequantized) the choice stays off or all layers until measured;
training.gradientCheckpointingLayers sets it there. */}}
{{- if and (lt (int $training.deepspeed.zeroStage) 3) (ne $training.method "qlora") }}
{{- range $k := untilStep 4 $layers 4 }}{{ $ckpts = append $ckpts $k }}{{ end }}
{{- end }}
{{- $ckpts = append $ckpts $layers }}
{{- end }}
{{- $micros := list $cfg.per_device_train_batch_size }}
{{- if $autoMicro }}
{{- $micros = list }}
{{- range $micro := list 64 32 16 8 4 2 1 }}
{{- if and (le $micro (int $batch.total)) (eq (mod (int $batch.total) $micro) 0) }}{{ $micros = append $micros $micro }}{{ end }}
{{- end }}
{{- end }}
{{- $chosen := dict }}
{{- range $checkpointed := $ckpts }}
{{- range $micro := $micros }}
{{- if not $chosen.found }}
{{- $try := deepCopy $cfg }}
{{- $_ := set $try "disable_gradient_checkpointing" (eq $checkpointed 0) }}
{{- $_ := unset $try "checkpointed_layers" }}
{{- if or (and (gt $checkpointed 0) (lt $checkpointed $layers)) (and $kSet (gt $checkpointed 0)) }}
{{- $_ := set $try "checkpointed_layers" $checkpointed }}
{{- end }}
{{- $_ := set $try "per_device_train_batch_size" $micro }}
{{- $mem := include "llama-factory.trainMemory" (dict "root" $root "stage" $stage "cfg" $try) | fromJson }}
{{- if le $mem.peak $mem.budget }}
{{- $_ := set $chosen "found" true }}
{{- $_ := set $chosen "cfg" $try }}
{{- $_ := set $chosen "micro" $micro }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if $chosen.found }}
{{- $_ := set $cfg "disable_gradient_checkpointing" $chosen.cfg.disable_gradient_checkpointing }}
{{- $_ := unset $cfg "checkpointed_layers" }}
{{- if hasKey $chosen.cfg "checkpointed_layers" }}
{{- $_ := set $cfg "checkpointed_layers" (get $chosen.cfg "checkpointed_layers") }}
{{- end }}
{{- if $autoMicro }}
{{- $_ := set $cfg "per_device_train_batch_size" $chosen.micro }}
{{- $_ := set $cfg "gradient_accumulation_steps" (div (int $batch.total) (int $chosen.micro)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $cfg }}
{{- end }}

{{/*
The checkpointing of a training config in words, from its memory estimate
(llama-factory.trainMemory): off, all N decoder layers, or the first K of N. A pure
value helper: takes the estimate itself.
*/}}
{{- define "llama-factory.checkpointingText" -}}
{{- if not .checkpointing }}off
{{- else if lt .checkpointedLayers .layers }}first {{ int .checkpointedLayers }} of {{ int .layers }} decoder layers
{{- else }}all {{ int .layers }} decoder layers
{{- end }}
{{- end }}

{{/*
Micro batch and accumulation of a training stage before the card-following
choice: explicit values win; a null one follows batchPerGpu (micro x
accumulation); both null start at micro 1 and mark the split "auto".
*/}}
{{- define "llama-factory.batchSplit" -}}
{{- $root := required "llama-factory.batchSplit: root is required" .root -}}
{{- $stageValues := index $root.Values .stage }}
{{- $total := int $stageValues.batchPerGpu }}
{{- $microSet := not (kindIs "invalid" $stageValues.perDeviceTrainBatchSize) }}
{{- $accSet := not (kindIs "invalid" $stageValues.gradientAccumulationSteps) }}
{{- $micro := 1 }}{{ $acc := $total }}
{{- if and $microSet $accSet }}
{{- $micro = int $stageValues.perDeviceTrainBatchSize }}{{ $acc = int $stageValues.gradientAccumulationSteps }}
{{- else if $microSet }}
{{- $micro = int $stageValues.perDeviceTrainBatchSize }}{{ $acc = max 1 (div $total $micro) }}
{{- else if $accSet }}
{{- $acc = int $stageValues.gradientAccumulationSteps }}{{ $micro = max 1 (div $total $acc) }}
{{- end }}
{{- dict "micro" $micro "accum" $acc "total" $total "auto" (not (or $microSet $accSet)) "divides" (or (eq (mul $micro $acc) $total) (and $microSet (ge $micro $total))) "explicitBoth" (and $microSet $accSet) | toJson }}
{{- end }}
