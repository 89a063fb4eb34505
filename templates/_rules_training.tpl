{{/*
Cross-field rules of the training stages (sft, dpo): model state and worst-case
memory against the card (llama-factory.trainMemory, _memory.tpl), DeepSpeed
offload, tokenizer workers, datasets, partial checkpointing.
*/}}

{{/*
Training: ZeRO against model size and card memory, the batch split, and the
worst micro batch against 90 % of the card.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.trainingMemory" -}}
{{- $root := required "llama-factory.rules.trainingMemory: root is required" .root -}}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $card := float64 $values.common.gpu.memoryGiB }}
{{- $errors := list }}
{{- if or (has "sft" $values.stages) (has "dpo" $values.stages) }}
{{- $need := include "llama-factory.trainGiBPerGpu" (dict "root" $root) | float64 }}
{{- $budget := mulf $card 0.8 }}
{{- if gt $need $budget }}
{{- $fix := "use ZeRO-3 (training.deepspeed.zeroStage=3), which shards the model over all GPUs" }}
{{- if eq (int $training.deepspeed.zeroStage) 3 }}
{{- $fix = "add GPUs (training.gpusPerWorker, training.workers), use larger cards, or offload (training.deepspeed.offloadParams)" }}
{{- end }}
{{- if ne $training.method "qlora" }}
{{- $fix = printf "%s, or train 4-bit QLoRA (training.method=qlora)" $fix }}
{{- end }}
{{- $errors = append $errors (printf "training.deepspeed.zeroStage: %s of a %vB model (model.parametersBillion) with ZeRO-%d on %d GPU(s) keeps about %.0f GiB of model state on each GPU, more than the 80%% of a %v GiB card (common.gpu.memoryGiB) that leaves room for activations. Fix: %s." $training.method $values.model.parametersBillion (int $training.deepspeed.zeroStage) (mul $training.workers $training.gpusPerWorker) $need $values.common.gpu.memoryGiB $fix) }}
{{- end }}
{{- range $stage := list "sft" "dpo" }}
{{- if has $stage $values.stages }}
{{- $split := include "llama-factory.batchSplit" (dict "root" $root "stage" $stage) | fromJson }}
{{- if and (not $split.explicitBoth) (not $split.auto) (not $split.divides) }}
{{- $errors = append $errors (printf "%s.batchPerGpu: %d is not a multiple of the micro batch times accumulation this config sets (%s.perDeviceTrainBatchSize or %s.gradientAccumulationSteps). Fix: make batchPerGpu a multiple of the one you set, or set both." $stage (int (index $values $stage).batchPerGpu) $stage $stage) }}
{{- end }}
{{- $mem := include "llama-factory.trainMemory" (dict "root" $root "stage" $stage) | fromJson }}
{{- if gt $mem.peak $mem.budget }}
{{- $unit := ternary "pair" "row" (eq $stage "dpo") }}
{{- $fixes := list }}
{{- if gt $mem.micro 1.0 }}
{{- $fixes = append $fixes (printf "lower %s.perDeviceTrainBatchSize and raise %s.gradientAccumulationSteps by the same factor (the same %ss per optimizer step)" $stage $stage $unit) }}
{{- end }}
{{- if not $mem.checkpointing }}
{{- $fixes = append $fixes "turn on training.gradientCheckpointing" }}
{{- else if lt $mem.checkpointedLayers $mem.layers }}
{{- $fixes = append $fixes (printf "checkpoint more decoder layers (training.gradientCheckpointingLayers, %d of %d now)" (int $mem.checkpointedLayers) (int $mem.layers)) }}
{{- end }}
{{- if and (eq $stage "sft") (not $mem.liger) }}
{{- $fixes = append $fixes "turn on training.enableLigerKernel (no full-vocabulary logits)" }}
{{- end }}
{{- $fixes = append $fixes (printf "lower %s.cutoffLen (longer samples are truncated)" $stage) }}
{{- if ne (int $training.deepspeed.zeroStage) 3 }}
{{- $fixes = append $fixes "shard the model with training.deepspeed.zeroStage=3 over more GPUs" }}
{{- end }}
{{- $fixes = append $fixes "or use larger cards (common.gpu.memoryGiB)" }}
{{- $errors = append $errors (printf "%s.perDeviceTrainBatchSize: the worst micro batch this config allows (%v %s(s) = %v sequences of %v tokens, every one at %s.cutoffLen) needs about %.1f GiB per GPU (model %.1f, LoRA states %.1f, activations %.1f, logits %.1f, eval %.1f, runtime %.1f), more than 90%% (%.1f GiB) of a %v GiB card (common.gpu.memoryGiB). Fix: %s." $stage $mem.micro $unit $mem.sequences $mem.cutoff $stage $mem.peak $mem.weights $mem.lora $mem.activations $mem.logits $mem.eval $mem.runtime $mem.budget $values.common.gpu.memoryGiB (join "; " $fixes)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Training: DeepSpeed offload against the ZeRO stage, tokenizer processes
against the CPU limit, each stage's datasets in the registry and of its kind.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.training" -}}
{{- $root := required "llama-factory.rules.training: root is required" .root -}}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $errors := list }}
{{- if or (has "sft" $values.stages) (has "dpo" $values.stages) }}
{{- if and $training.deepspeed.offloadParams (ne (int $training.deepspeed.zeroStage) 3) }}
{{- $errors = append $errors "training.deepspeed.offloadParams: parameter offload works only with ZeRO-3. Fix: set training.deepspeed.zeroStage=3 or offloadParams=false." }}
{{- end }}
{{- if and $training.deepspeed.offloadOptimizer (eq (int $training.deepspeed.zeroStage) 0) }}
{{- $errors = append $errors "training.deepspeed.offloadOptimizer: optimizer offload needs ZeRO 1, 2 or 3. Fix: raise training.deepspeed.zeroStage or set offloadOptimizer=false." }}
{{- end }}
{{- if gt (int $training.preprocessingNumWorkers) (div (include "llama-factory.millicores" $training.resources.limits.cpu | int) 1000) }}
{{- $errors = append $errors (printf "training.preprocessingNumWorkers: %d tokenizer processes exceed the %v CPUs of training.resources.limits.cpu. Fix: lower preprocessingNumWorkers or raise the CPU limit." (int $training.preprocessingNumWorkers) $training.resources.limits.cpu) }}
{{- end }}
{{- range $stage := list "sft" "dpo" }}
{{- if has $stage $values.stages }}
{{- range $i, $dataset := (index $values $stage).datasets }}
{{- if not (hasKey $values.datasets $dataset) }}
{{- $errors = append $errors (printf "%s.datasets[%d]: dataset %q is not in the datasets registry (datasets.<name>). Fix: add it to datasets or pick one of: %s." $stage $i $dataset (join ", " (keys $values.datasets | sortAlpha))) }}
{{- else if ne (eq $stage "dpo") (default false (index $values.datasets $dataset).ranking) }}
{{- $errors = append $errors (printf "%s.datasets[%d]: dataset %q %s. Fix: DPO needs preference data (ranking: true), SFT needs instruction data; list it under the other stage or fix datasets.%s.ranking." $stage $i $dataset (ternary "has no chosen/rejected pairs (ranking is not true)" "is preference data (ranking: true)" (eq $stage "dpo")) $dataset) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Partial checkpointing: the launcher's key comes from training.gradientCheckpointingLayers only.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.checkpointing" -}}
{{- $root := required "llama-factory.rules.checkpointing: root is required" .root -}}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $errors := list }}
{{- range $where, $extra := dict "training" $training.extraArgs "sft" $values.sft.extraArgs "dpo" $values.dpo.extraArgs }}
{{- if hasKey $extra "checkpointed_layers" }}
{{- $errors = append $errors (printf "%s.extraArgs.checkpointed_layers: the chart sets checkpointed_layers itself (its launcher applies it; LLaMA-Factory does not know the key). Fix: remove %s.extraArgs.checkpointed_layers and set training.gradientCheckpointingLayers." $where $where) }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" $training.gradientCheckpointingLayers) }}
{{- $off := eq $training.gradientCheckpointing false }}
{{- range $stage := list "sft" "dpo" }}
{{- if has $stage $values.stages }}
{{- $extra := merge (deepCopy (index $values $stage).extraArgs) (deepCopy $training.extraArgs) }}
{{- $disable := get $extra "disable_gradient_checkpointing" }}
{{- if or $off (and (kindIs "bool" $disable) $disable) }}
{{- $errors = append $errors (printf "training.gradientCheckpointingLayers: %v layers checkpointed, but gradient checkpointing is off for %s (%s). Fix: remove training.gradientCheckpointingLayers, or turn checkpointing on." $training.gradientCheckpointingLayers $stage (ternary "training.gradientCheckpointing=false" "extraArgs disable_gradient_checkpointing: true" $off)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}
