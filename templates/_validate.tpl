{{/*
Cross-field rules that values.schema.json cannot express. Every broken rule
adds one line naming the field and the fix; all lines fail together, so a user
sees every problem of a values file in one run.
*/}}

{{- define "llama-factory.validStages" -}}
{{- list "workspace" "sft" "merge-sft" "dpo" "merge-dpo" "eval" "serve" | toJson }}
{{- end }}

{{/*
Model memory on one GPU, in GiB, for the training settings: the weights the
method keeps (2 bytes per parameter in 16 bits, about 0.55 in 4 bits, 1.05
in 8 bits), plus for full fine-tuning 2 bytes of gradients and 12 of Adam
states per parameter; ZeRO shards what its stage covers across all GPUs.
*/}}
{{- define "llama-factory.trainGiBPerGpu" -}}
{{- $t := .Values.training }}
{{- $p := float64 .Values.model.parametersBillion }}
{{- $n := float64 (mul $t.workers $t.gpusPerWorker) }}
{{- $z := int $t.deepspeed.zeroStage }}
{{- $w := 2.0 }}
{{- if eq $t.method "qlora" }}{{ $w = ternary 0.55 1.05 (eq (int $t.quantizationBits) 4) }}{{ end }}
{{- $weights := mulf $p $w }}
{{- if eq $t.method "full" }}
{{- $grads := mulf $p 2.0 }}
{{- $optim := ternary 0.0 (mulf $p 12.0) $t.deepspeed.offloadOptimizer }}
{{- if ge $z 1 }}{{ $optim = divf $optim $n }}{{ end }}
{{- if ge $z 2 }}{{ $grads = divf $grads $n }}{{ end }}
{{- if ge $z 3 }}{{ $weights = ternary 0.0 (divf $weights $n) $t.deepspeed.offloadParams }}{{ end }}
{{- addf $weights $grads $optim }}
{{- else }}
{{- if ge $z 3 }}{{ $weights = ternary 0.0 (divf $weights $n) $t.deepspeed.offloadParams }}{{ end }}
{{- $weights }}
{{- end }}
{{- end }}

{{/*
Worst-case GPU memory of one training rank, in GiB: the micro batch the
rendered config allows (llama-factory.trainArgs, extraArgs included) with
every sequence at the cutoff, for the stage's peak (training step or eval).
Calibrated on 1 x H200 under a card-size cap (tests/gpu/worst-case-results.json,
README "Worst-case memory"): the allocator peaks it predicts are 0 to +5 %
above the measured ones (tests/test_memory_model.py pins that). Terms (bytes):
  weights   parameters x 2 (bf16: LLaMA-Factory loads bf16 on GPUs that have
            it whatever training.bf16 says; QLoRA 0.55 / 1.05), ZeRO-3
            shards them and gathers two layers at a time; full fine-tuning
            adds gradients and Adam states (llama-factory.trainGiBPerGpu);
  lora      rank x layers x 20 x hidden trainable parameters (every linear
            layer of a Llama block, in + out features) x 16 bytes (fp32
            weight, gradient, two Adam moments; ZeRO shards the last three);
  acts      tokens x hidden x (2 K + 38 max(L - K, 1)) for K of the L decoder
            layers checkpointed: a checkpointed layer keeps its input (2 bytes
            per hidden unit), the others all of theirs (38); with every layer
            checkpointed the one being recomputed holds 38 at the peak, with
            some left plain the peak is the end of the forward pass, before any
            recomputation. K = 0 (off): tokens x L x 38 x hidden; K = L (all):
            tokens x hidden x (2 L + 38). Measured (tests/gpu/card-defaults-
            results.json, SFT at 4,096 tokens): K = 32, 4, 0 at 20.28, 31.92,
            34.08 GiB allocator, predicted +1.6 %, +2.1 %, +2.2 %;
  logits    DPO (LLaMA-Factory's concatenated_forward): tokens x vocabulary x
            19 (fp32 logits and log-softmax of the policy kept for backward,
            bf16 + fp32 logits and log-softmax of the reference forward: 18,
            and about 1 of smaller temporaries, fitted to the measurements);
            SFT with Liger's fused linear cross-entropy: tokens x hidden x 8;
            SFT without it: tokens x vocabulary x 16;
  eval      no activations kept; logits of the eval micro batch: SFT x 10,
            DPO x 14 bytes per token and vocabulary entry;
  other     0.5 GiB (DeepSpeed buffers, RoPE caches, optimizer temporaries);
  runtime   2 GiB outside the allocator (measured 1.67: CUDA context, cuBLAS,
            Triton, NCCL) with expandable segments (training.cudaAllocConf),
            plus 10 % of the allocator's peak without them (fragmentation).
A DPO micro batch of N pairs is 2N sequences (chosen and rejected).
*/}}
{{- define "llama-factory.trainMemory" -}}
{{- $ := .root }}
{{- $stage := .stage }}
{{- $v := $.Values }}
{{- $t := $v.training }}
{{- $m := $v.model }}
{{- $cfg := .cfg }}
{{- if not $cfg }}
{{- $cfg = include "llama-factory.trainArgs" (dict "root" $ "stage" $stage) | fromJson }}
{{- end }}
{{- $gib := 1073741824.0 }}
{{- $n := float64 (mul $t.workers $t.gpusPerWorker) }}
{{- $z := int $t.deepspeed.zeroStage }}
{{- $h := float64 $m.hiddenSize }}
{{- $L := float64 $m.numLayers }}
{{- $V := float64 $m.vocabSize }}
{{- $actB := 1.0 }}
{{- $cutoff := float64 $cfg.cutoff_len }}
{{- $micro := float64 $cfg.per_device_train_batch_size }}
{{- $seqs := ternary (mulf $micro 2.0) $micro (eq $stage "dpo") }}
{{- $tokens := mulf $seqs $cutoff }}
{{- $ckpt := not (default false (get $cfg "disable_gradient_checkpointing")) }}
{{- /* checkpointed decoder layers: 0 off, L all, the launcher's checkpointed_layers (at most L) */}}
{{- $K := 0.0 }}
{{- if $ckpt }}
{{- $K = $L }}
{{- if hasKey $cfg "checkpointed_layers" }}{{ $K = minf $L (float64 (get $cfg "checkpointed_layers")) }}{{ end }}
{{- end }}
{{- $liger := default false (get $cfg "enable_liger_kernel") }}
{{- /* model state */}}
{{- $params := mulf (float64 $m.parametersBillion) 1000000000.0 }}
{{- $weights := 0.0 }}
{{- $lora := 0.0 }}
{{- if eq $t.method "full" }}
{{- $weights = mulf (include "llama-factory.trainGiBPerGpu" $ | float64) (divf 1000000000.0 $gib) }}
{{- else }}
{{- $wb := 2.0 }}
{{- if eq $t.method "qlora" }}{{ $wb = ternary 0.55 1.05 (eq (int $t.quantizationBits) 4) }}{{ end }}
{{- $weights = divf (mulf $params $wb) $gib }}
{{- if ge $z 3 }}{{ $weights = addf (divf $weights $n) (divf (mulf $weights 2.0) $L) }}{{ end }}
{{- $trainable := mulf (float64 $t.lora.rank) $L 20.0 $h }}
{{- $optim := 12.0 }}{{ $grad := 4.0 }}
{{- if ge $z 1 }}{{ $optim = divf $optim $n }}{{ end }}
{{- if ge $z 2 }}{{ $grad = divf $grad $n }}{{ end }}
{{- $lora = divf (mulf $trainable (addf $optim $grad)) $gib }}
{{- end }}
{{- /* activations and logits of the training micro batch */}}
{{- $acts := divf (mulf $actB $tokens $h (addf (mulf 2.0 $K) (mulf 38.0 (maxf (subf $L $K) 1.0)))) $gib }}
{{- $logits := 0.0 }}
{{- if eq $stage "dpo" }}
{{- $logits = divf (mulf $tokens $V 19.0) $gib }}
{{- else if $liger }}
{{- $logits = divf (mulf $tokens $h 8.0) $gib }}
{{- else }}
{{- $logits = divf (mulf $tokens $V 16.0) $gib }}
{{- end }}
{{- $train := addf $acts $logits }}
{{- /* evaluation micro batch */}}
{{- $eval := 0.0 }}
{{- $evalTokens := 0.0 }}
{{- if hasKey $cfg "val_size" }}
{{- $em := float64 (default 1 $cfg.per_device_eval_batch_size) }}
{{- $evalTokens = mulf (ternary (mulf $em 2.0) $em (eq $stage "dpo")) $cutoff }}
{{- $eval = divf (mulf $evalTokens $V (ternary 14.0 10.0 (eq $stage "dpo"))) $gib }}
{{- end }}
{{- $alloc := addf $weights $lora 0.5 (ternary $train $eval (ge $train $eval)) }}
{{- $expandable := contains "expandable_segments:True" (default "" $t.cudaAllocConf) }}
{{- $runtime := ternary 2.0 (addf 2.0 (mulf $alloc 0.1)) $expandable }}
{{- $peak := addf $alloc $runtime }}
{{- dict "stage" $stage "tokens" $tokens "sequences" $seqs "cutoff" $cutoff "micro" $micro "checkpointing" $ckpt "checkpointedLayers" $K "layers" $L "liger" $liger
  "weights" $weights "lora" $lora "activations" $acts "logits" $logits "train" $train "eval" $eval "evalTokens" $evalTokens
  "allocator" $alloc "runtime" $runtime "peak" $peak "budget" (mulf (float64 $v.common.gpu.memoryGiB) 0.9) | toJson }}
{{- end }}

{{/*
The path of the first value YAML cannot carry (a control character such as
U+0000-U+0008 or U+007F-U+009F, which --set-json or a quoted "\u007f" in a
values file can bring in), or nothing. Helm 3's toYaml turns such a value into
an empty string without an error, so a ConfigMap would silently lose its data.
Takes dict "value" "path".
*/}}
{{- define "llama-factory.unyamlable" -}}
{{- if ne (toYaml .value) "" }}
{{- else if kindIs "map" .value }}
{{- $found := "" }}
{{- range $k, $x := .value }}
{{- $key := ternary (printf ".%s" $k) (printf "[%q]" $k) (regexMatch "^[A-Za-z0-9_-]+$" $k) }}
{{- if not $found }}{{ $found = include "llama-factory.unyamlable" (dict "value" $x "path" (printf "%s%s" $.path $key)) }}{{ end }}
{{- end }}
{{- $found | default .path }}
{{- else if kindIs "slice" .value }}
{{- $found := "" }}
{{- range $i, $x := .value }}
{{- if not $found }}{{ $found = include "llama-factory.unyamlable" (dict "value" $x "path" (printf "%s[%d]" $.path $i)) }}{{ end }}
{{- end }}
{{- $found | default .path }}
{{- else }}
{{- .path }}
{{- end }}
{{- end }}

{{- define "llama-factory.validate" -}}
{{- $v := .Values }}
{{- $errors := list }}
{{- $valid := include "llama-factory.validStages" . | fromJsonArray }}
{{- $seen := dict }}
{{- range $i, $s := $v.stages }}
{{- if not (has $s $valid) }}
{{- $errors = append $errors (printf "stages[%d]: unknown stage %q. Valid stages: %s." $i $s (join ", " $valid)) }}
{{- else if hasKey $seen $s }}
{{- $errors = append $errors (printf "stages[%d]: stage %q is listed twice. List each stage once." $i $s) }}
{{- end }}
{{- $_ := set $seen (toString $s) true }}
{{- end }}
{{- if not $v.stages }}
{{- $errors = append $errors (printf "stages: the list is empty, so nothing would be rendered. Name at least one of: %s." (join ", " $valid)) }}
{{- end }}
{{- $t := $v.training }}
{{- $card := float64 $v.common.gpu.memoryGiB }}
{{- $params := float64 $v.model.parametersBillion }}

{{- /* Training: ZeRO against model size and card memory. */}}
{{- if or (has "sft" $v.stages) (has "dpo" $v.stages) }}
{{- $need := include "llama-factory.trainGiBPerGpu" . | float64 }}
{{- $budget := mulf $card 0.8 }}
{{- if gt $need $budget }}
{{- $fix := "use ZeRO-3 (training.deepspeed.zeroStage=3), which shards the model over all GPUs" }}
{{- if eq (int $t.deepspeed.zeroStage) 3 }}
{{- $fix = "add GPUs (training.gpusPerWorker, training.workers), use larger cards, or offload (training.deepspeed.offloadParams)" }}
{{- end }}
{{- if ne $t.method "qlora" }}
{{- $fix = printf "%s, or train 4-bit QLoRA (training.method=qlora)" $fix }}
{{- end }}
{{- $errors = append $errors (printf "training.deepspeed.zeroStage: %s of a %vB model (model.parametersBillion) with ZeRO-%d on %d GPU(s) keeps about %.0f GiB of model state on each GPU, more than the 80%% of a %v GiB card (common.gpu.memoryGiB) that leaves room for activations. Fix: %s." $t.method $v.model.parametersBillion (int $t.deepspeed.zeroStage) (mul $t.workers $t.gpusPerWorker) $need $v.common.gpu.memoryGiB $fix) }}
{{- end }}
{{- range $stage := list "sft" "dpo" }}
{{- if has $stage $v.stages }}
{{- $split := include "llama-factory.batchSplit" (dict "root" $ "stage" $stage) | fromJson }}
{{- if and (not $split.explicitBoth) (not $split.auto) (not $split.divides) }}
{{- $errors = append $errors (printf "%s.batchPerGpu: %d is not a multiple of the micro batch times accumulation this config sets (%s.perDeviceTrainBatchSize or %s.gradientAccumulationSteps). Fix: make batchPerGpu a multiple of the one you set, or set both." $stage (int (index $v $stage).batchPerGpu) $stage $stage) }}
{{- end }}
{{- $mem := include "llama-factory.trainMemory" (dict "root" $ "stage" $stage) | fromJson }}
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
{{- if ne (int $t.deepspeed.zeroStage) 3 }}
{{- $fixes = append $fixes "shard the model with training.deepspeed.zeroStage=3 over more GPUs" }}
{{- end }}
{{- $fixes = append $fixes "or use larger cards (common.gpu.memoryGiB)" }}
{{- $errors = append $errors (printf "%s.perDeviceTrainBatchSize: the worst micro batch this config allows (%v %s(s) = %v sequences of %v tokens, every one at %s.cutoffLen) needs about %.1f GiB per GPU (model %.1f, LoRA states %.1f, activations %.1f, logits %.1f, eval %.1f, runtime %.1f), more than 90%% (%.1f GiB) of a %v GiB card (common.gpu.memoryGiB). Fix: %s." $stage $mem.micro $unit $mem.sequences $mem.cutoff $stage $mem.peak $mem.weights $mem.lora $mem.activations $mem.logits $mem.eval $mem.runtime $mem.budget $v.common.gpu.memoryGiB (join "; " $fixes)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $t.deepspeed.offloadParams (ne (int $t.deepspeed.zeroStage) 3) }}
{{- $errors = append $errors "training.deepspeed.offloadParams: parameter offload works only with ZeRO-3. Fix: set training.deepspeed.zeroStage=3 or offloadParams=false." }}
{{- end }}
{{- if and $t.deepspeed.offloadOptimizer (eq (int $t.deepspeed.zeroStage) 0) }}
{{- $errors = append $errors "training.deepspeed.offloadOptimizer: optimizer offload needs ZeRO 1, 2 or 3. Fix: raise training.deepspeed.zeroStage or set offloadOptimizer=false." }}
{{- end }}
{{- if gt (int $t.preprocessingNumWorkers) (div (include "llama-factory.millicores" $t.resources.limits.cpu | int) 1000) }}
{{- $errors = append $errors (printf "training.preprocessingNumWorkers: %d tokenizer processes exceed the %v CPUs of training.resources.limits.cpu. Fix: lower preprocessingNumWorkers or raise the CPU limit." (int $t.preprocessingNumWorkers) $t.resources.limits.cpu) }}
{{- end }}
{{- range $stage := list "sft" "dpo" }}
{{- if has $stage $v.stages }}
{{- range $i, $d := (index $v $stage).datasets }}
{{- if not (hasKey $v.datasets $d) }}
{{- $errors = append $errors (printf "%s.datasets[%d]: dataset %q is not in the datasets registry (datasets.<name>). Fix: add it to datasets or pick one of: %s." $stage $i $d (join ", " (keys $v.datasets | sortAlpha))) }}
{{- else if ne (eq $stage "dpo") (default false (index $v.datasets $d).ranking) }}
{{- $errors = append $errors (printf "%s.datasets[%d]: dataset %q %s. Fix: DPO needs preference data (ranking: true), SFT needs instruction data; list it under the other stage or fix datasets.%s.ranking." $stage $i $d (ternary "has no chosen/rejected pairs (ranking is not true)" "is preference data (ranking: true)" (eq $stage "dpo")) $d) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Merge: only adapters can be merged; the merge needs the model in memory. */}}
{{- if or (has "merge-sft" $v.stages) (has "merge-dpo" $v.stages) }}
{{- if eq $t.method "full" }}
{{- $errors = append $errors "stages: merge-sft and merge-dpo merge a LoRA adapter, but training.method=full writes a whole model that needs no merge. Fix: drop the merge stages (eval and serve read the full model directly) or train with lora/qlora." }}
{{- end }}
{{- $bf16GiB := mulf $params 2.0 }}
{{- if eq $v.merge.exportDevice "cpu" }}
{{- $have := divf (include "llama-factory.mebibytes" $v.merge.resources.limits.memory | float64) 1024.0 }}
{{- if lt $have (mulf $bf16GiB 2.0) }}
{{- $errors = append $errors (printf "merge.resources.limits.memory: a CPU merge holds the whole %vB model (model.parametersBillion) in bf16 (%.0f GiB) plus the merged copy being saved; %v is less than the %.0f GiB (2 x bf16) it needs. Fix: raise merge.resources.limits.memory (and requests) or merge on GPUs (merge.exportDevice=auto, merge.gpus)." $v.model.parametersBillion $bf16GiB $v.merge.resources.limits.memory (mulf $bf16GiB 2.0)) }}
{{- end }}
{{- else }}
{{- if lt (mulf (float64 $v.merge.gpus) $card) (mulf $bf16GiB 1.1) }}
{{- $errors = append $errors (printf "merge.gpus: merging on GPUs (merge.exportDevice=auto) needs the %.0f GiB bf16 model on the cards; %d x %v GiB (common.gpu.memoryGiB) is too little. Fix: raise merge.gpus or use merge.exportDevice=cpu." $bf16GiB (int $v.merge.gpus) $v.common.gpu.memoryGiB) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Eval and serve: a model the pipeline produces, on enough GPU memory. */}}
{{- if has "eval" $v.stages }}
{{- if lt (mulf (float64 $v.eval.gpus) $card 0.9) (mulf $params 2.0 1.1) }}
{{- $errors = append $errors (printf "eval.gpus: lm-evaluation-harness loads the %vB model (model.parametersBillion) in bf16 (%.0f GiB); %d x %v GiB cards (common.gpu.memoryGiB) cannot hold it. Fix: raise eval.gpus." $v.model.parametersBillion (mulf $params 2.0) (int $v.eval.gpus) $v.common.gpu.memoryGiB) }}
{{- end }}
{{- end }}
{{- if has "serve" $v.stages }}
{{- $s := $v.serving }}
{{- if $s.lora }}
{{- if eq $s.model "base" }}
{{- $errors = append $errors "serving.lora: the base model has no adapter to serve. Fix: set serving.model to sft or dpo, or serving.lora=false." }}
{{- else if eq $t.method "full" }}
{{- $errors = append $errors (printf "serving.lora: training.method=full produces no LoRA adapter for %q. Fix: set serving.lora=false to serve the fully fine-tuned model." $s.model) }}
{{- end }}
{{- $rank := include "llama-factory.maxLoraRank" . | int }}
{{- if eq $rank 0 }}
{{- $errors = append $errors (printf "training.lora.rank: vLLM serves LoRA ranks up to 512; rank %v cannot be served with serving.lora=true. Fix: train with a lower rank or serve the merged model (serving.lora=false)." $t.lora.rank) }}
{{- end }}
{{- with (index $s.extraArgs "max-lora-rank") }}
{{- if lt (int .) (int $t.lora.rank) }}
{{- $errors = append $errors (printf "serving.extraArgs.max-lora-rank: %v is below the trained LoRA rank %v (training.lora.rank), so vLLM would refuse the adapter. Fix: remove the override; the chart sets --max-lora-rank from the trained rank." . $t.lora.rank) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Flags the chart derives from typed values (probes, GPU limit, Service and helm test follow them). */}}
{{- $ownedFlags := dict "port" "nothing: vLLM listens on 8000, the container port the probes and the Service target (serving.service.port sets the Service's port)" "tensor-parallel-size" "serving.tensorParallelSize (also the GPU limit)" "served-model-name" "serving.servedModelName" "lora-modules" "serving.lora and serving.model" "enable-lora" "serving.lora" }}
{{- range $flag, $_ := $s.extraArgs }}
{{- $use := get $ownedFlags (replace "_" "-" $flag) }}
{{- if $use }}
{{- $errors = append $errors (printf "serving.extraArgs.%s: the chart sets --%s itself. Fix: remove serving.extraArgs.%s and set %s." $flag (replace "_" "-" $flag) $flag $use) }}
{{- end }}
{{- end }}
{{- if ne (mod (int $v.model.numKeyValueHeads) (int $s.tensorParallelSize)) 0 }}
{{- $errors = append $errors (printf "serving.tensorParallelSize: %d does not divide the model's %d key/value heads (model.numKeyValueHeads), which vLLM requires. Fix: use 1, 2, 4 or 8." (int $s.tensorParallelSize) (int $v.model.numKeyValueHeads)) }}
{{- end }}
{{- if lt (mulf (float64 $s.tensorParallelSize) $card (float64 $s.gpuMemoryUtilization)) (mulf $params 2.0 1.1) }}
{{- $errors = append $errors (printf "serving.tensorParallelSize: the %vB model (model.parametersBillion) needs about %.0f GiB for bf16 weights alone; %d x %v GiB cards (common.gpu.memoryGiB) at gpuMemoryUtilization %v leave no room for the KV cache. Fix: raise serving.tensorParallelSize or common.gpu.memoryGiB." $v.model.parametersBillion (mulf $params 2.0) (int $s.tensorParallelSize) $v.common.gpu.memoryGiB $s.gpuMemoryUtilization) }}
{{- end }}
{{- end }}

{{- /* Paths the chart derives: what one stage writes, the next reads (and a run's identity). */}}
{{- $ownedPaths := list "output_dir" "model_name_or_path" "adapter_name_or_path" "dataset_dir" "export_dir" "deepspeed" }}
{{- range $where, $extra := dict "training" $t.extraArgs "sft" $v.sft.extraArgs "dpo" $v.dpo.extraArgs "merge" $v.merge.extraArgs }}
{{- range $key := $ownedPaths }}
{{- if hasKey $extra $key }}
{{- $errors = append $errors (printf "%s.extraArgs.%s: the chart sets %s itself; the stages after this one read the paths it derives from model.name, training.method and run, so a moved path silently breaks the chain. Fix: remove %s.extraArgs.%s; for a separate experiment set run=<name>." $where $key $key $where $key) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Partial checkpointing: the launcher's key comes from training.gradientCheckpointingLayers only. */}}
{{- range $where, $extra := dict "training" $t.extraArgs "sft" $v.sft.extraArgs "dpo" $v.dpo.extraArgs }}
{{- if hasKey $extra "checkpointed_layers" }}
{{- $errors = append $errors (printf "%s.extraArgs.checkpointed_layers: the chart sets checkpointed_layers itself (its launcher applies it; LLaMA-Factory does not know the key). Fix: remove %s.extraArgs.checkpointed_layers and set training.gradientCheckpointingLayers." $where $where) }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" $t.gradientCheckpointingLayers) }}
{{- $off := eq $t.gradientCheckpointing false }}
{{- range $stage := list "sft" "dpo" }}
{{- if has $stage $v.stages }}
{{- $extra := merge (deepCopy (index $v $stage).extraArgs) (deepCopy $t.extraArgs) }}
{{- $disable := get $extra "disable_gradient_checkpointing" }}
{{- if or $off (and (kindIs "bool" $disable) $disable) }}
{{- $errors = append $errors (printf "training.gradientCheckpointingLayers: %v layers checkpointed, but gradient checkpointing is off for %s (%s). Fix: remove training.gradientCheckpointingLayers, or turn checkpointing on." $t.gradientCheckpointingLayers $stage (ternary "training.gradientCheckpointing=false" "extraArgs disable_gradient_checkpointing: true" $off)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Every pod: requests within limits, /dev/shm inside the memory limit. */}}
{{- $pods := dict "training" $t "notebook" $v.notebook "eval" $v.eval "serving" $v.serving "merge" $v.merge "download" $v.download }}
{{- range $name, $c := $pods }}
{{- $r := $c.resources }}
{{- if gt (include "llama-factory.mebibytes" $r.requests.memory | int) (include "llama-factory.mebibytes" $r.limits.memory | int) }}
{{- $errors = append $errors (printf "%s.resources.requests.memory: %v is above the limit %v. Fix: lower the request or raise the limit." $name $r.requests.memory $r.limits.memory) }}
{{- end }}
{{- if gt (include "llama-factory.millicores" $r.requests.cpu | int) (include "llama-factory.millicores" $r.limits.cpu | int) }}
{{- $errors = append $errors (printf "%s.resources.requests.cpu: %v is above the limit %v. Fix: lower the request or raise the limit." $name $r.requests.cpu $r.limits.cpu) }}
{{- end }}
{{- if $c.shmSize }}
{{- if ge (mul (include "llama-factory.mebibytes" $c.shmSize | int) 2) (include "llama-factory.mebibytes" $r.limits.memory | int) }}
{{- $errors = append $errors (printf "%s.shmSize: /dev/shm (%v) is memory and counts against %s.resources.limits.memory (%v); it may take at most half of it. Fix: lower shmSize or raise the memory limit." $name $c.shmSize $name $r.limits.memory) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* What the chart owns cannot be set through the free-form maps. */}}
{{- $owned := list "/tmp" "/dev/shm" (include "llama-factory.configPath" .) $v.storage.mountPath }}
{{- $seenPaths := dict }}
{{- range $name, $vol := $v.common.extraVolumes }}
{{- if has $name (list "workspace" "tmp" "dshm" "config") }}
{{- $errors = append $errors (printf "common.extraVolumes.%s: the chart names its own volume %q. Fix: give this volume another name." $name $name) }}
{{- end }}
{{- /* One directory, however written: /data, /data/ and /data/./ are the same mount point. */}}
{{- $at := clean $vol.mountPath }}
{{- if has $at $owned }}
{{- $errors = append $errors (printf "common.extraVolumes.%s.mountPath: %s is where the chart mounts its own volume. Fix: pick another path." $name $vol.mountPath) }}
{{- else if hasKey $seenPaths $at }}
{{- $errors = append $errors (printf "common.extraVolumes.%s.mountPath: %s is also the mount path of common.extraVolumes.%s. Fix: give each volume its own path." $name $vol.mountPath (get $seenPaths $at)) }}
{{- end }}
{{- $_ := set $seenPaths $at $name }}
{{- end }}
{{- range $field, $m := dict "common.podLabels" $v.common.podLabels "common.podAnnotations" $v.common.podAnnotations "storage.annotations" $v.storage.annotations "common.labels" $v.common.labels }}
{{- range $k, $_ := $m }}
{{- if or (hasPrefix "app.kubernetes.io/" $k) (hasPrefix "helm.sh/" $k) (has $k (list "scheduler.tensorstack.dev/queue" "llama-factory/fingerprint" "argocd.argoproj.io/sync-options" "kustomize.toolkit.fluxcd.io/prune")) }}
{{- $errors = append $errors (printf "%s: %q is set by the chart (labels, selectors, the PVC's keep policy for Helm and GitOps tools, the T9k queue, a stage's fingerprint). Fix: remove it, or use the value that drives it." $field $k) }}
{{- end }}
{{- end }}
{{- end }}

{{- range $k, $x := $v.common.labels }}
{{- if and (hasKey $v.common.podLabels $k) (ne (toString (get $v.common.podLabels $k)) (toString $x)) }}
{{- $errors = append $errors (printf "common.podLabels: %q is also in common.labels with another value (%q there, %q here), and a pod carries one value per label. Fix: give it one value, in common.labels (every object) or common.podLabels (pods only)." $k $x (get $v.common.podLabels $k)) }}
{{- end }}
{{- end }}

{{- /* Environment the chart sets: an extraEnv entry of the same name would lose in some containers and win in others. */}}
{{- $ownedEnv := dict
  "HF_HOME" "the chart needs it: the chart keeps the Hugging Face cache on the PVC (<storage.mountPath>/.cache/huggingface), where the download stage put the datasets"
  "HF_ENDPOINT" "set common.huggingface.endpoint instead"
  "HF_TOKEN" "set common.huggingface.existingSecret and common.huggingface.tokenKey instead"
  "HOME" "the chart needs it: HOME=/tmp is the writable emptyDir under the read-only root filesystem"
  "HF_HUB_OFFLINE" "the chart needs it: the serve stage reads the model from the PVC only"
  "HF_DATASETS_TRUST_REMOTE_CODE" "the chart needs it: the eval stage needs it for the CMMLU and C-Eval loaders"
  "VLLM_API_KEY" "set serving.apiKey.existingSecret and serving.apiKey.key instead"
  "VLLM_NO_USAGE_STATS" "the chart needs it: the chart turns vLLM's usage reporting off"
  "PYTORCH_CUDA_ALLOC_CONF" "set training.cudaAllocConf instead"
  "DS_ENV_FILE" "the chart needs it: with several workers DeepSpeed reads the T9k controller's environment file through it"
  "USE_MODELSCOPE_HUB" "set model.source instead" }}
{{- range $name, $_ := $v.common.extraEnv }}
{{- $use := get $ownedEnv $name }}
{{- if hasPrefix "LLAMA_FACTORY_" $name }}{{ $use = "the chart needs it: LLAMA_FACTORY_* carry a stage's fingerprint and attempts to its launcher" }}{{ end }}
{{- if $use }}
{{- $errors = append $errors (printf "common.extraEnv.%s: the chart sets %s itself, and a second entry of one name is silently dropped or wins depending on the container. Fix: remove common.extraEnv.%s (%s)." $name $name $name $use) }}
{{- end }}
{{- end }}

{{- /* Secrets only by reference. */}}
{{- range $name, $v := $v.common.extraEnv }}
{{- if and (regexMatch "(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)" $name) (not (kindIs "map" $v)) }}
{{- $errors = append $errors (printf "common.extraEnv.%s: a secret's value would be rendered into every pod spec. Fix: put it in a Secret and write common.extraEnv.%s.valueFrom.secretKeyRef: {name: <secret>, key: <key>}." $name $name) }}
{{- end }}
{{- end }}

{{- /* Decimals given as text (`--set` makes a string of 0.00002): the schema bounds numbers only. */}}
{{- $bounds := dict "minimum" "at least %v" "exclusiveMinimum" "greater than %v" "maximum" "at most %v" "exclusiveMaximum" "less than %v" }}
{{- range $field := include "llama-factory.decimalFields" . | fromJsonArray }}
{{- $path := index $field 0 }}
{{- $x := $v }}
{{- range $k := splitList "." $path }}{{ $x = index $x $k }}{{ end }}
{{- if kindIs "string" $x }}
{{- $f := float64 $x }}
{{- $range := list }}
{{- $out := false }}
{{- range $b := list "minimum" "exclusiveMinimum" "maximum" "exclusiveMaximum" }}
{{- if hasKey (index $field 1) $b }}
{{- $lim := float64 (index (index $field 1) $b) }}
{{- $range = append $range (printf (get $bounds $b) $lim) }}
{{- if or (and (eq $b "minimum") (lt $f $lim)) (and (eq $b "exclusiveMinimum") (le $f $lim)) (and (eq $b "maximum") (gt $f $lim)) (and (eq $b "exclusiveMaximum") (ge $f $lim)) }}{{ $out = true }}{{ end }}
{{- end }}
{{- end }}
{{- if $out }}
{{- $errors = append $errors (printf "%s: %q must be %s. Fix: set %s to a number in that range (a decimal given with --set arrives as text and is checked the same way)." $path $x (join " and " $range) $path) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Model facts (files/models.yaml) and the PVC size they need (templates/_models.tpl). */}}
{{- $errors = concat $errors (include "llama-factory.modelErrors" . | fromJsonArray) (include "llama-factory.storageErrors" . | fromJsonArray) }}

{{- /* The PVC is mounted by several pods at once (Notebook, download, every stage) and written to. */}}
{{- $modes := $v.storage.accessModes }}
{{- if has "ReadWriteOncePod" $modes }}
{{- $errors = append $errors (printf "storage.accessModes: ReadWriteOncePod lets one pod at a time mount the PVC (and the API server refuses it beside other modes), while the Notebook, the download Job and the stages mount it together. Fix: set storage.accessModes to [ReadWriteMany] (or [ReadWriteOnce] when every pod runs on one node).") }}
{{- else if not (or (has "ReadWriteMany" $modes) (has "ReadWriteOnce" $modes)) }}
{{- $errors = append $errors (printf "storage.accessModes: %s gives no pod write access, but every stage writes to the PVC. Fix: set storage.accessModes to [ReadWriteMany] (or [ReadWriteOnce] when every pod runs on one node)." (toJson $modes)) }}
{{- end }}

{{- /* Every value must survive YAML: Helm 3 renders one that cannot as nothing. */}}
{{- with include "llama-factory.unyamlable" (dict "value" $v "path" "") }}
{{- $errors = append $errors (printf "%s: holds a control character (in a key or a value), which YAML cannot carry (it would render as an empty string). Fix: remove it from the value." (trimPrefix "." .)) }}
{{- end }}

{{- if $errors }}
{{- fail (printf "\n\nllama-factory: invalid values:\n  - %s\n" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}

{{/*
--max-lora-rank for vLLM: the smallest rank vLLM accepts that holds the
trained rank; 0 when none does. vLLM 0.11.0's LoRA config allows exactly
these (its parser takes any int; the engine refuses others at start).
*/}}
{{- define "llama-factory.maxLoraRank" -}}
{{- $rank := int .Values.training.lora.rank }}
{{- $out := 0 }}
{{- range $r := list 8 16 32 64 128 256 320 512 }}
{{- if and (eq $out 0) (ge $r $rank) }}{{ $out = $r }}{{ end }}
{{- end }}
{{- $out }}
{{- end }}
