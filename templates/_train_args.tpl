{{/*
The LLaMA-Factory arguments of a training stage (sft or dpo), extraArgs
applied, as JSON: rendered into train.yaml, and read by the memory check
(llama-factory.trainMemory), so that the check sizes exactly what runs.
*/}}
{{- define "llama-factory.trainArgs" -}}
{{- $root := required "llama-factory.trainArgs: root is required" .root -}}
{{- $stage := .stage }}
{{- $p := include "llama-factory.paths" (dict "root" $root) | fromYaml }}
{{- $t := $root.Values.training }}
{{- $s := index $root.Values $stage }}
{{- $configPath := include "llama-factory.configPath" dict }}
{{- $batch := include "llama-factory.batchSplit" (dict "root" $root "stage" $stage) | fromJson }}
{{- /* Decimals go through float64: `--set sft.learningRate=0.00002` gives a string (_decimals.tpl). */}}
{{- $cfg := dict
  "model_name_or_path" (include "llama-factory.abs" (dict "root" $root "path" (ternary $p.base $p.sftModel (eq $stage "sft"))))
  "stage" $stage
  "do_train" true
  "finetuning_type" (ternary "full" "lora" (eq $t.method "full"))
  "deepspeed" (printf "%s/ds_config.json" $configPath)
  "flash_attn" $t.flashAttn
  "enable_liger_kernel" $t.enableLigerKernel
  "disable_gradient_checkpointing" (not (ternary true $t.gradientCheckpointing (kindIs "invalid" $t.gradientCheckpointing)))
  "dataset_dir" $configPath
  "dataset" (join "," $s.datasets)
  "template" $root.Values.model.template
  "cutoff_len" (default $t.cutoffLen $s.cutoffLen)
  "overwrite_cache" $t.overwriteCache
  "preprocessing_num_workers" $t.preprocessingNumWorkers
  "output_dir" (include "llama-factory.abs" (dict "root" $root "path" (get $p $stage)))
  "logging_steps" $s.loggingSteps
  "save_steps" $s.saveSteps
  "plot_loss" $t.plotLoss
  "overwrite_output_dir" $t.overwriteOutputDir
  "report_to" $t.reportTo
  "per_device_train_batch_size" $batch.micro
  "gradient_accumulation_steps" $batch.accum
  "learning_rate" (float64 $s.learningRate)
  "num_train_epochs" (float64 $s.numTrainEpochs)
  "lr_scheduler_type" $s.lrSchedulerType
  "warmup_ratio" (float64 $s.warmupRatio)
  "bf16" $t.bf16
  "ddp_timeout" $t.ddpTimeout }}
{{- if not (kindIs "invalid" $t.saveTotalLimit) }}
{{- $_ := set $cfg "save_total_limit" $t.saveTotalLimit }}
{{- end }}
{{- if gt (int $s.maxSteps) 0 }}
{{- $_ := set $cfg "max_steps" $s.maxSteps }}
{{- end }}
{{- if ne $t.method "full" }}
{{- $_ := merge $cfg (dict "lora_target" $t.lora.target "lora_rank" $t.lora.rank "lora_dropout" (float64 $t.lora.dropout)) }}
{{- if not (kindIs "invalid" $t.lora.alpha) }}
{{- $_ := set $cfg "lora_alpha" $t.lora.alpha }}
{{- end }}
{{- end }}
{{- if eq $t.method "qlora" }}
{{- $_ := merge $cfg (dict "quantization_bit" $t.quantizationBits "quantization_method" "bnb") }}
{{- end }}
{{- if eq $stage "dpo" }}
{{- $_ := merge $cfg (dict "pref_beta" (float64 $s.prefBeta) "pref_loss" $s.prefLoss) }}
{{- else if $s.packing }}
{{- $_ := set $cfg "neat_packing" true }}
{{- end }}
{{- if gt (float64 $s.valSize) 0.0 }}
{{- $_ := merge $cfg (dict "val_size" (float64 $s.valSize) "per_device_eval_batch_size" $s.perDeviceEvalBatchSize "eval_strategy" "steps" "eval_steps" $s.evalSteps) }}
{{- end }}
{{- include "llama-factory.override" (dict "dst" $cfg "src" (deepCopy $t.extraArgs)) }}
{{- include "llama-factory.override" (dict "dst" $cfg "src" (deepCopy $s.extraArgs)) }}
{{- /* Defaults that follow the card (values left null): the fastest checkpointing (off, the
first K decoder layers in steps of 4, fewest first, then all layers), then the largest micro batch
dividing batchPerGpu, whose worst case fits; explicit values and extraArgs win. Checkpointing
is carried as the number of checkpointed layers: 0 off, L all, else the launcher's
checkpointed_layers key (files/launch.py applies it and removes it before LLaMA-Factory reads
the config). */}}
{{- $L := int $root.Values.model.numLayers }}
{{- $kSet := not (kindIs "invalid" $t.gradientCheckpointingLayers) }}
{{- if and $kSet (not $cfg.disable_gradient_checkpointing) }}
{{- $_ := set $cfg "checkpointed_layers" (int $t.gradientCheckpointingLayers) }}
{{- end }}
{{- $extra := merge (deepCopy $s.extraArgs) (deepCopy $t.extraArgs) }}
{{- $autoCkpt := and (kindIs "invalid" $t.gradientCheckpointing) (not $kSet) (not (hasKey $extra "disable_gradient_checkpointing")) }}
{{- $autoMicro := and $batch.auto (not (hasKey $extra "per_device_train_batch_size")) (not (hasKey $extra "gradient_accumulation_steps")) }}
{{- if or $autoCkpt $autoMicro }}
{{- $ckpts := list (ternary 0 (ternary (int $t.gradientCheckpointingLayers) $L $kSet) $cfg.disable_gradient_checkpointing) }}
{{- if $autoCkpt }}
{{- $ckpts = list 0 }}
{{- /* Partial checkpointing only where its memory was measured (docs/gpu-card-defaults.md):
whole, unquantized weights on each GPU (ZeRO 0-2, not QLoRA). Under ZeRO-3 (layers gathered
as they run) and QLoRA (layers dequantized) the choice stays off or all layers until measured;
training.gradientCheckpointingLayers sets it there. */}}
{{- if and (lt (int $t.deepspeed.zeroStage) 3) (ne $t.method "qlora") }}
{{- range $k := untilStep 4 $L 4 }}{{ $ckpts = append $ckpts $k }}{{ end }}
{{- end }}
{{- $ckpts = append $ckpts $L }}
{{- end }}
{{- $micros := list $cfg.per_device_train_batch_size }}
{{- if $autoMicro }}
{{- $micros = list }}
{{- range $m := list 64 32 16 8 4 2 1 }}
{{- if and (le $m (int $batch.total)) (eq (mod (int $batch.total) $m) 0) }}{{ $micros = append $micros $m }}{{ end }}
{{- end }}
{{- end }}
{{- $chosen := dict }}
{{- range $ck := $ckpts }}
{{- range $m := $micros }}
{{- if not $chosen.found }}
{{- $try := deepCopy $cfg }}
{{- $_ := set $try "disable_gradient_checkpointing" (eq $ck 0) }}
{{- $_ := unset $try "checkpointed_layers" }}
{{- if or (and (gt $ck 0) (lt $ck $L)) (and $kSet (gt $ck 0)) }}
{{- $_ := set $try "checkpointed_layers" $ck }}
{{- end }}
{{- $_ := set $try "per_device_train_batch_size" $m }}
{{- $mem := include "llama-factory.trainMemory" (dict "root" $root "stage" $stage "cfg" $try) | fromJson }}
{{- if le $mem.peak $mem.budget }}
{{- $_ := set $chosen "found" true }}
{{- $_ := set $chosen "cfg" $try }}
{{- $_ := set $chosen "micro" $m }}
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
{{- $s := index $root.Values .stage }}
{{- $total := int $s.batchPerGpu }}
{{- $microSet := not (kindIs "invalid" $s.perDeviceTrainBatchSize) }}
{{- $accSet := not (kindIs "invalid" $s.gradientAccumulationSteps) }}
{{- $micro := 1 }}{{ $acc := $total }}
{{- if and $microSet $accSet }}
{{- $micro = int $s.perDeviceTrainBatchSize }}{{ $acc = int $s.gradientAccumulationSteps }}
{{- else if $microSet }}
{{- $micro = int $s.perDeviceTrainBatchSize }}{{ $acc = max 1 (div $total $micro) }}
{{- else if $accSet }}
{{- $acc = int $s.gradientAccumulationSteps }}{{ $micro = max 1 (div $total $acc) }}
{{- end }}
{{- dict "micro" $micro "accum" $acc "total" $total "auto" (not (or $microSet $accSet)) "divides" (or (eq (mul $micro $acc) $total) (and $microSet (ge $micro $total))) "explicitBoth" (and $microSet $accSet) | toJson }}
{{- end }}
