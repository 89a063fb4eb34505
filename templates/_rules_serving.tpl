{{/*
Cross-field rules of eval and serve: a model the pipeline produces, on enough
GPU memory, and vLLM flags the chart derives itself.
*/}}

{{/*
Eval: lm-evaluation-harness holds the bf16 model on eval.gpus cards.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.eval" -}}
{{- $root := required "llama-factory.rules.eval: root is required" .root -}}
{{- $values := $root.Values }}
{{- $card := float64 $values.common.gpu.memoryGiB }}
{{- $params := float64 $values.model.parametersBillion }}
{{- $errors := list }}
{{- if has "eval" $values.stages }}
{{- if lt (mulf (float64 $values.eval.gpus) $card 0.9) (mulf $params 2.0 1.1) }}
{{- $errors = append $errors (printf "eval.gpus: lm-evaluation-harness loads the %vB model (model.parametersBillion) in bf16 (%.0f GiB); %d x %v GiB cards (common.gpu.memoryGiB) cannot hold it. Fix: raise eval.gpus." $values.model.parametersBillion (mulf $params 2.0) (int $values.eval.gpus) $values.common.gpu.memoryGiB) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Serve: adapters that can be served, flags the chart owns, tensor parallelism
that divides the KV heads and leaves room for the KV cache.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.serving" -}}
{{- $root := required "llama-factory.rules.serving: root is required" .root -}}
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $card := float64 $values.common.gpu.memoryGiB }}
{{- $params := float64 $values.model.parametersBillion }}
{{- $errors := list }}
{{- if has "serve" $values.stages }}
{{- $serving := $values.serving }}
{{- if $serving.lora }}
{{- if eq $serving.model "base" }}
{{- $errors = append $errors "serving.lora: the base model has no adapter to serve. Fix: set serving.model to sft or dpo, or serving.lora=false." }}
{{- else if eq $training.method "full" }}
{{- $errors = append $errors (printf "serving.lora: training.method=full produces no LoRA adapter for %q. Fix: set serving.lora=false to serve the fully fine-tuned model." $serving.model) }}
{{- end }}
{{- $rank := include "llama-factory.maxLoraRank" (dict "root" $root) | int }}
{{- if eq $rank 0 }}
{{- $errors = append $errors (printf "training.lora.rank: vLLM serves LoRA ranks up to 512; rank %v cannot be served with serving.lora=true. Fix: train with a lower rank or serve the merged model (serving.lora=false)." $training.lora.rank) }}
{{- end }}
{{- with (index $serving.extraArgs "max-lora-rank") }}
{{- if lt (int .) (int $training.lora.rank) }}
{{- $errors = append $errors (printf "serving.extraArgs.max-lora-rank: %v is below the trained LoRA rank %v (training.lora.rank), so vLLM would refuse the adapter. Fix: remove the override; the chart sets --max-lora-rank from the trained rank." . $training.lora.rank) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Flags the chart derives from typed values (probes, GPU limit, Service and helm test follow them). */}}
{{- $ownedFlags := dict "port" "nothing: vLLM listens on 8000, the container port the probes and the Service target (serving.service.port sets the Service's port)" "tensor-parallel-size" "serving.tensorParallelSize (also the GPU limit)" "served-model-name" "serving.servedModelName" "lora-modules" "serving.lora and serving.model" "enable-lora" "serving.lora" }}
{{- range $flag, $_ := $serving.extraArgs }}
{{- $use := get $ownedFlags (replace "_" "-" $flag) }}
{{- if $use }}
{{- $errors = append $errors (printf "serving.extraArgs.%s: the chart sets --%s itself. Fix: remove serving.extraArgs.%s and set %s." $flag (replace "_" "-" $flag) $flag $use) }}
{{- end }}
{{- end }}
{{- if ne (mod (int $values.model.numKeyValueHeads) (int $serving.tensorParallelSize)) 0 }}
{{- $errors = append $errors (printf "serving.tensorParallelSize: %d does not divide the model's %d key/value heads (model.numKeyValueHeads), which vLLM requires. Fix: use 1, 2, 4 or 8." (int $serving.tensorParallelSize) (int $values.model.numKeyValueHeads)) }}
{{- end }}
{{- if lt (mulf (float64 $serving.tensorParallelSize) $card (float64 $serving.gpuMemoryUtilization)) (mulf $params 2.0 1.1) }}
{{- $errors = append $errors (printf "serving.tensorParallelSize: the %vB model (model.parametersBillion) needs about %.0f GiB for bf16 weights alone; %d x %v GiB cards (common.gpu.memoryGiB) at gpuMemoryUtilization %v leave no room for the KV cache. Fix: raise serving.tensorParallelSize or common.gpu.memoryGiB." $values.model.parametersBillion (mulf $params 2.0) (int $serving.tensorParallelSize) $values.common.gpu.memoryGiB $serving.gpuMemoryUtilization) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
--max-lora-rank for vLLM: the smallest rank vLLM accepts that holds the
trained rank; 0 when none does. vLLM 0.11.0's LoRA config allows exactly
these (its parser takes any int; the engine refuses others at start).
*/}}
{{- define "llama-factory.maxLoraRank" -}}
{{- $root := required "llama-factory.maxLoraRank: root is required" .root -}}
{{- $rank := int $root.Values.training.lora.rank }}
{{- $out := 0 }}
{{- range $served := list 8 16 32 64 128 256 320 512 }}
{{- if and (eq $out 0) (ge $served $rank) }}{{ $out = $served }}{{ end }}
{{- end }}
{{- $out }}
{{- end }}
