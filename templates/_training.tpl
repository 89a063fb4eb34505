{{/*
The training stages' objects (sft, dpo; templates/training.yaml): the parts of
a stage, the DeepSpeedJob's spec and its worker pod spec. The LLaMA-Factory
arguments they render are llama-factory.trainArgs (_train_args.tpl).
*/}}

{{/*
The parts of a training stage (sft or dpo) as JSON: its ConfigMap (name,
data), the DeepSpeedJob's spec and worker pod spec, and the content hash that
names the DeepSpeedJob (its fingerprint). Call with (dict "root" $ "stage" s).
*/}}
{{- define "llama-factory.trainingParts" -}}
{{- $root := required "llama-factory.trainingParts: root is required" .root -}}
{{- $stage := .stage }}
{{- $training := $root.Values.training }}
{{- $configPath := include "llama-factory.configPath" dict }}
{{- $cfg := include "llama-factory.trainArgs" (dict "root" $root "stage" $stage) | fromJson }}
{{- $sections := list
  (list "model" (list "model_name_or_path" "trust_remote_code" "quantization_bit" "quantization_method" "flash_attn" "enable_liger_kernel"))
  (list "method" (list "stage" "do_train" "finetuning_type" "lora_target" "lora_rank" "lora_alpha" "lora_dropout" "pref_beta" "pref_loss" "deepspeed" "disable_gradient_checkpointing"))
  (list "launcher (files/launch.py: checkpoint only the first N decoder layers; removed before LLaMA-Factory reads this file)" (list "checkpointed_layers"))
  (list "dataset" (list "dataset_dir" "dataset" "template" "cutoff_len" "neat_packing" "packing" "max_samples" "overwrite_cache" "preprocessing_num_workers"))
  (list "output" (list "output_dir" "logging_steps" "save_steps" "save_total_limit" "plot_loss" "overwrite_output_dir" "report_to"))
  (list "train" (list "per_device_train_batch_size" "gradient_accumulation_steps" "learning_rate" "num_train_epochs" "max_steps" "lr_scheduler_type" "warmup_ratio" "bf16" "ddp_timeout"))
  (list "eval" (list "val_size" "per_device_eval_batch_size" "eval_strategy" "eval_steps")) }}
{{- $cmName := include "llama-factory.stageName" (dict "root" $root "stage" (printf "%s-config" $stage)) }}
{{- $cmData := dict
  "train.yaml" (include "llama-factory.lfYaml" (dict "sections" $sections "values" $cfg) | trim | printf "%s\n")
  "ds_config.json" (include "llama-factory.deepspeedConfig" (dict "root" $root) | printf "%s\n")
  "dataset_info.json" (include "llama-factory.datasetInfo" (dict "root" $root) | printf "%s\n")
  "launch.py" ($root.Files.Get "files/launch.py") }}
{{- $vctx := dict "root" $root "shmSize" $training.shmSize "configMap" $cmName "configPath" $configPath }}
{{- $spec := include "llama-factory.deepspeedJobSpec" (dict "root" $root "configPath" $configPath "stage" $stage) }}
{{- $podSpec := include "llama-factory.trainingPodSpec" (dict "root" $root "vctx" $vctx "stage" $stage) }}
{{- $fingerprint := include "llama-factory.contentHash" (dict "root" $root "stage" $stage "content" (cat $spec $podSpec (toJson $cmData))) }}
{{- dict "cmName" $cmName "cmData" $cmData "spec" $spec "podSpec" $podSpec "fingerprint" $fingerprint
  "name" (printf "%s-%s-%s" (include "llama-factory.prefix" (dict "root" $root)) $stage $fingerprint) | toJson }}
{{- end }}

{{- define "llama-factory.deepspeedJobSpec" -}}
{{- $root := required "llama-factory.deepspeedJobSpec: root is required" .root -}}
{{- $training := $root.Values.training }}
{{- include "llama-factory.t9kScheduler" (dict "root" $root "withPriority" true "block" .stage) | trim }}
runPolicy:
  backoffLimit: {{ $training.backoffLimit | int }}
  {{- if not (kindIs "invalid" $training.activeDeadlineSeconds) }}
  {{- /* A stage that waits for another in its release: the deadline also covers the wait. */}}
  {{- $waits := include "llama-factory.waits" (dict "root" $root "stage" .stage) | fromYamlArray }}
  activeDeadlineSeconds: {{ add $training.activeDeadlineSeconds (ternary $root.Values.pipeline.waitTimeoutSeconds 0 (gt (len $waits) 0)) }}
  {{- end }}
  cleanUpPolicy: {{ $training.cleanUpPolicy }}
config:
  slotsPerWorker: {{ $training.gpusPerWorker | int }}
  # The controller starts `deepspeed --hostfile /t9k/hostfile …
  # /etc/llama-factory/launch.py train /etc/llama-factory/train.yaml`;
  # DeepSpeed's launch.py then runs `python -u launch.py train train.yaml` per
  # GPU with RANK, LOCAL_RANK and WORLD_SIZE in the environment. The chart's
  # launch.py (files/launch.py) skips a finished run, resumes from the newest
  # complete checkpoint, and runs llamafactory.launcher in the same process.
  # DeepSpeed would put `--local_rank=N` before the arguments, and
  # LLaMA-Factory reads a config file only when sys.argv[1] ends in .yaml;
  # localRank: false makes the controller pass --no_local_rank.
  localRank: false
  {{- if eq (int $training.workers) 1 }}
  # One worker: DeepSpeed still ssh-checks the one host of the hostfile and asks
  # it for its address; both are pointless inside one pod, and skipping them
  # means the image needs no sshd.
  otherArgs:
    - --no_ssh_check
    - --master_addr=127.0.0.1
  {{- end }}
  run:
    python:
      - {{ printf "%s/launch.py" .configPath }}
      - train
      - {{ printf "%s/train.yaml" .configPath }}
{{- end }}

{{- define "llama-factory.trainingPodSpec" -}}
{{- $root := required "llama-factory.trainingPodSpec: root is required" .root -}}
{{- $training := $root.Values.training }}
{{- $image := include "llama-factory.image" (dict "root" $root "image" $root.Values.images.llamaFactory "block" .stage) }}
{{- include "llama-factory.podCommon" (dict "root" $root "t9k" true "block" .stage "gpus" $training.gpusPerWorker) | trim }}
{{- with include "llama-factory.waitInit" (dict "root" $root "stage" .stage "image" $image "configPath" .vctx.configPath) }}
{{- . | nindent 0 }}
{{- end }}
{{- /* Restricted, except multi-worker sshd and RDMA (values.yaml says why), or the conventional
shape of T9k's own DeepSpeedJob examples (training.podShape): root, a writable root
filesystem, the runtime's default capabilities and IPC_LOCK. */}}
{{- $securityContext := deepCopy (ternary $training.multiWorkerSecurityContext $root.Values.common.containerSecurityContext (gt (int $training.workers) 1)) }}
{{- if eq $training.podShape "conventional" }}
{{- $securityContext = dict "runAsNonRoot" false "runAsUser" 0 "readOnlyRootFilesystem" false "capabilities" (dict "add" (list "IPC_LOCK")) "seccompProfile" (dict "type" "RuntimeDefault") }}
{{- else if $training.rdma.enabled }}
{{- $caps := default dict $securityContext.capabilities }}
{{- $_ := set $caps "add" (append (default list $caps.add) "IPC_LOCK") }}
{{- $_ := set $securityContext "capabilities" $caps }}
{{- end }}
containers:
  {{- include "llama-factory.container" (dict "root" $root "comment" "The controller runs training in the container named \"worker\"."
    "name" "worker" "image" $image "env" (include "llama-factory.trainingEnv" (dict "root" $root) | trim)
    "resources" $training.resources "gpus" $training.gpusPerWorker "rdma" $training.rdma
    "securityContext" $securityContext "mounts" .vctx) | trim | nindent 2 }}
volumes:
  {{- include "llama-factory.volumes" .vctx | nindent 2 }}
{{- end }}

{{/*
The worker's own environment, after the chart's (llama-factory.container): HOME
and DeepSpeed's environment file unless the pod has the conventional shape, the
producer's record, the model hub, the CUDA allocator. Call with (dict "root" $).
*/}}
{{- define "llama-factory.trainingEnv" -}}
{{- $root := required "llama-factory.trainingEnv: root is required" .root -}}
{{- $training := $root.Values.training }}
{{- /* The conventional shape keeps the image's HOME (/root): DeepSpeed's launcher reads the
controller's ~/.deepspeed_env there (docs/t9k-deepspeedjob.md). */}}
{{- if ne $training.podShape "conventional" }}
{{- include "llama-factory.homeEnv" dict | nindent 0 }}
{{- if gt (int $training.workers) 1 }}
{{- /* HOME is /tmp here, but the controller writes the environment for the remote ranks
into /root/.deepspeed_env: DeepSpeed's runner reads DS_ENV_FILE (an absolute path wins
over its ~ and . search). */}}
- name: DS_ENV_FILE
  value: /root/.deepspeed_env
{{- end }}
{{- end }}
{{- /* ExitCode: T9k restarts a worker only on these exit codes (signals). */}}
{{- include "llama-factory.producerEnv" (dict "attempts" (add1 $training.backoffLimit) "retried" (get (dict "ExitCode" "130,137,138,143" "Never" "none") $training.restartPolicy)) | nindent 0 }}
{{- if eq $root.Values.model.source "modelscope" }}
- name: USE_MODELSCOPE_HUB
  value: "1"
{{- end }}
{{- with $training.cudaAllocConf }}
- name: PYTORCH_CUDA_ALLOC_CONF
  value: {{ . | quote }}
{{- end }}
{{- end }}
