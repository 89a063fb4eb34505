{{/*
Cross-field rules of names and secrets: labels and annotations the chart sets,
environment variables it sets, secrets only by reference.
*/}}

{{/*
Labels and annotations the chart sets cannot be set through the free-form maps,
and a label in common.labels and common.podLabels has one value.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.labels" -}}
{{- $root := required "llama-factory.rules.labels: root is required" .root -}}
{{- $values := $root.Values }}
{{- $errors := list }}
{{- range $field, $map := dict "common.podLabels" $values.common.podLabels "common.podAnnotations" $values.common.podAnnotations "storage.annotations" $values.storage.annotations "common.labels" $values.common.labels }}
{{- range $k, $_ := $map }}
{{- if or (hasPrefix "app.kubernetes.io/" $k) (hasPrefix "helm.sh/" $k) (has $k (list "scheduler.tensorstack.dev/queue" "llama-factory/fingerprint" "argocd.argoproj.io/sync-options" "kustomize.toolkit.fluxcd.io/prune")) }}
{{- $errors = append $errors (printf "%s: %q is set by the chart (labels, selectors, the PVC's keep policy for Helm and GitOps tools, the T9k queue, a stage's fingerprint). Fix: remove it, or use the value that drives it." $field $k) }}
{{- end }}
{{- end }}
{{- end }}

{{- range $k, $x := $values.common.labels }}
{{- if and (hasKey $values.common.podLabels $k) (ne (toString (get $values.common.podLabels $k)) (toString $x)) }}
{{- $errors = append $errors (printf "common.podLabels: %q is also in common.labels with another value (%q there, %q here), and a pod carries one value per label. Fix: give it one value, in common.labels (every object) or common.podLabels (pods only)." $k $x (get $values.common.podLabels $k)) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Environment the chart sets: an extraEnv entry of the same name would lose in some containers and win in others.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.env" -}}
{{- $root := required "llama-factory.rules.env: root is required" .root -}}
{{- $values := $root.Values }}
{{- $errors := list }}
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
{{- range $name, $_ := $values.common.extraEnv }}
{{- $use := get $ownedEnv $name }}
{{- if hasPrefix "LLAMA_FACTORY_" $name }}{{ $use = "the chart needs it: LLAMA_FACTORY_* carry a stage's fingerprint and attempts to its launcher" }}{{ end }}
{{- if $use }}
{{- $errors = append $errors (printf "common.extraEnv.%s: the chart sets %s itself, and a second entry of one name is silently dropped or wins depending on the container. Fix: remove common.extraEnv.%s (%s)." $name $name $name $use) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Secrets only by reference.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.secrets" -}}
{{- $root := required "llama-factory.rules.secrets: root is required" .root -}}
{{- $values := $root.Values }}
{{- $errors := list }}
{{- range $name, $value := $values.common.extraEnv }}
{{- if and (regexMatch "(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)" $name) (not (kindIs "map" $value)) }}
{{- $errors = append $errors (printf "common.extraEnv.%s: a secret's value would be rendered into every pod spec. Fix: put it in a Secret and write common.extraEnv.%s.valueFrom.secretKeyRef: {name: <secret>, key: <key>}." $name $name) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}
