{{/*
The parts of the workspace's download Job as JSON (llama-factory.stageParts):
files/download.py fetches the model (without original/*) and the Hub datasets
into the PVC, run by launch.py, which records the outcome next to the model
directory for the stages after it.
*/}}
{{- define "llama-factory.downloadParts" -}}
{{- $root := required "llama-factory.downloadParts: root is required" .root -}}
{{- $paths := include "llama-factory.paths" (dict "root" $root) | fromYaml }}
{{- $download := $root.Values.download }}
{{- /* Each Hub dataset from the hub LLaMA-Factory will load it from (its data parser): ModelScope
  when model.source=modelscope and the dataset has an ms_hub_url, or when it has no hf_hub_url;
  the Hugging Face Hub otherwise (a dataset with only hf_hub_url, such as the default DPO ones). */}}
{{- $hubDatasets := list }}
{{- $files := list }}
{{- range $name, $dataset := $root.Values.datasets }}
{{- if or (hasKey $dataset "hf_hub_url") (hasKey $dataset "ms_hub_url") }}
{{- $fromModelscope := or (and (eq $root.Values.model.source "modelscope") (hasKey $dataset "ms_hub_url")) (not (hasKey $dataset "hf_hub_url")) }}
{{- $entry := dict "repo" (index $dataset (ternary "ms_hub_url" "hf_hub_url" $fromModelscope)) "source" (ternary "modelscope" "huggingface" $fromModelscope) }}
{{- if not (has $entry $hubDatasets) }}
{{- $hubDatasets = append $hubDatasets $entry }}
{{- end }}
{{- else if and $dataset.file_name (not (isAbs $dataset.file_name)) }}
{{- $files = append $files $dataset.file_name }}
{{- end }}
{{- end }}
{{- $plan := dict
  "model" (dict
    "source" $root.Values.model.source
    "repo" (ternary $root.Values.model.huggingfaceRepo $root.Values.model.modelscopeRepo (eq $root.Values.model.source "huggingface"))
    "revision" $root.Values.model.revision
    "exclude" $root.Values.model.excludePatterns
    "target" (include "llama-factory.abs" (dict "root" $root "path" $paths.base)))
  "datasets" (ternary (dict "source" $root.Values.model.source "datasets" $hubDatasets "markers" (include "llama-factory.abs" (dict "root" $root "path" (printf "%s/llama-factory-datasets" $paths.hfHome)))) dict $download.datasets)
  "files" (dict "dataDir" (include "llama-factory.abs" (dict "root" $root "path" $paths.data)) "imageDataDir" "/app/data" "files" $files) }}
{{- $cmName := include "llama-factory.stageName" (dict "root" $root "stage" "download") }}
{{- $cmData := dict "download.json" (toPrettyJson $plan) "download.py" ($root.Files.Get "files/download.py") "launch.py" ($root.Files.Get "files/launch.py") }}
{{- $configPath := include "llama-factory.configPath" dict }}
{{- $vctx := dict "root" $root "shmSize" "" "configMap" $cmName "configPath" $configPath }}
{{- $podSpec := include "llama-factory.jobPodSpec" (dict "root" $root "vctx" $vctx "name" "download" "stage" "workspace"
  "command" (list "python" "-u" (printf "%s/launch.py" $configPath) "run" (printf "--output=%s" $plan.model.target) "--"
                  "python" (printf "%s/download.py" $configPath) (printf "%s/download.json" $configPath))
  "resources" $download.resources "gpus" 0 "attempts" (add1 $download.backoffLimit)) }}
{{- $fingerprint := include "llama-factory.contentHash" (dict "root" $root "stage" "download" "content" (cat $podSpec (toJson $cmData))) }}
{{- dict "cmName" $cmName "cmData" $cmData "podSpec" $podSpec "fingerprint" $fingerprint
  "name" (printf "%s-download-%s" (include "llama-factory.prefix" (dict "root" $root)) $fingerprint) | toJson }}
{{- end }}
