{{/*
The chart's model of GPU memory in training: model state per GPU
(llama-factory.trainGiBPerGpu) and the worst case of one rank
(llama-factory.trainMemory), read by the training rules, the card-following
defaults of llama-factory.trainArgs and the DeepSpeedJob's annotation.
*/}}

{{/*
Model memory on one GPU, in GiB, for the training settings: the weights the
method keeps (2 bytes per parameter in 16 bits, about 0.55 in 4 bits, 1.05
in 8 bits), plus for full fine-tuning 2 bytes of gradients and 12 of Adam
states per parameter; ZeRO shards what its stage covers across all GPUs.
*/}}
{{- define "llama-factory.trainGiBPerGpu" -}}
{{- $root := required "llama-factory.trainGiBPerGpu: root is required" .root -}}
{{- $training := $root.Values.training }}
{{- $paramsB := float64 $root.Values.model.parametersBillion }}
{{- $gpus := float64 (mul $training.workers $training.gpusPerWorker) }}
{{- $zeroStage := int $training.deepspeed.zeroStage }}
{{- $bytesPerParam := 2.0 }}
{{- if eq $training.method "qlora" }}{{ $bytesPerParam = ternary 0.55 1.05 (eq (int $training.quantizationBits) 4) }}{{ end }}
{{- $weights := mulf $paramsB $bytesPerParam }}
{{- if eq $training.method "full" }}
{{- $grads := mulf $paramsB 2.0 }}
{{- $optim := ternary 0.0 (mulf $paramsB 12.0) $training.deepspeed.offloadOptimizer }}
{{- if ge $zeroStage 1 }}{{ $optim = divf $optim $gpus }}{{ end }}
{{- if ge $zeroStage 2 }}{{ $grads = divf $grads $gpus }}{{ end }}
{{- if ge $zeroStage 3 }}{{ $weights = ternary 0.0 (divf $weights $gpus) $training.deepspeed.offloadParams }}{{ end }}
{{- addf $weights $grads $optim }}
{{- else }}
{{- if ge $zeroStage 3 }}{{ $weights = ternary 0.0 (divf $weights $gpus) $training.deepspeed.offloadParams }}{{ end }}
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
{{- $root := required "llama-factory.trainMemory: root is required" .root -}}
{{- $stage := .stage }}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $model := $values.model }}
{{- $cfg := .cfg }}
{{- if not $cfg }}
{{- $cfg = include "llama-factory.trainArgs" (dict "root" $root "stage" $stage) | fromJson }}
{{- end }}
{{- $gib := 1073741824.0 }}
{{- $gpus := float64 (mul $training.workers $training.gpusPerWorker) }}
{{- $zeroStage := int $training.deepspeed.zeroStage }}
{{- $h := float64 $model.hiddenSize }}
{{- $L := float64 $model.numLayers }}
{{- $V := float64 $model.vocabSize }}
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
{{- $params := mulf (float64 $model.parametersBillion) 1000000000.0 }}
{{- $weights := 0.0 }}
{{- $lora := 0.0 }}
{{- if eq $training.method "full" }}
{{- $weights = mulf (include "llama-factory.trainGiBPerGpu" (dict "root" $root) | float64) (divf 1000000000.0 $gib) }}
{{- else }}
{{- $bytesPerParam := 2.0 }}
{{- if eq $training.method "qlora" }}{{ $bytesPerParam = ternary 0.55 1.05 (eq (int $training.quantizationBits) 4) }}{{ end }}
{{- $weights = divf (mulf $params $bytesPerParam) $gib }}
{{- if ge $zeroStage 3 }}{{ $weights = addf (divf $weights $gpus) (divf (mulf $weights 2.0) $L) }}{{ end }}
{{- $trainable := mulf (float64 $training.lora.rank) $L 20.0 $h }}
{{- $optim := 12.0 }}{{ $grad := 4.0 }}
{{- if ge $zeroStage 1 }}{{ $optim = divf $optim $gpus }}{{ end }}
{{- if ge $zeroStage 2 }}{{ $grad = divf $grad $gpus }}{{ end }}
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
{{- $evalMicro := float64 (default 1 $cfg.per_device_eval_batch_size) }}
{{- $evalTokens = mulf (ternary (mulf $evalMicro 2.0) $evalMicro (eq $stage "dpo")) $cutoff }}
{{- $eval = divf (mulf $evalTokens $V (ternary 14.0 10.0 (eq $stage "dpo"))) $gib }}
{{- end }}
{{- $alloc := addf $weights $lora 0.5 (ternary $train $eval (ge $train $eval)) }}
{{- $expandable := contains "expandable_segments:True" (default "" $training.cudaAllocConf) }}
{{- $runtime := ternary 2.0 (addf 2.0 (mulf $alloc 0.1)) $expandable }}
{{- $peak := addf $alloc $runtime }}
{{- dict "stage" $stage "tokens" $tokens "sequences" $seqs "cutoff" $cutoff "micro" $micro "checkpointing" $ckpt "checkpointedLayers" $K "layers" $L "liger" $liger
  "weights" $weights "lora" $lora "activations" $acts "logits" $logits "train" $train "eval" $eval "evalTokens" $evalTokens
  "allocator" $alloc "runtime" $runtime "peak" $peak "budget" (mulf (float64 $values.common.gpu.memoryGiB) 0.9) | toJson }}
{{- end }}
