{{/*
The serve stage: the served model's name and the probe of its models route.
*/}}

{{/* The model name clients of the serve stage ask for. */}}
{{- define "llama-factory.servedModelName" -}}
{{- $root := required "llama-factory.servedModelName: root is required" .root -}}
{{- if $root.Values.serving.servedModelName }}
{{- $root.Values.serving.servedModelName }}
{{- else }}
{{- $src := include "llama-factory.modelSource" (dict "root" $root "model" $root.Values.serving.model "lora" false) | fromYaml }}
{{- base $src.model }}
{{- end }}
{{- end }}

{{/*
Probe of vLLM's /v1/models. With an API key the endpoint needs the key, which
must not appear in the pod spec, so an exec probe reads it from the
environment; without one a plain httpGet does.
*/}}
{{- define "llama-factory.modelsProbe" -}}
{{- $root := required "llama-factory.modelsProbe: root is required" .root -}}
{{- if $root.Values.serving.apiKey.existingSecret }}
exec:
  command:
    - python3
    - -c
    - |
      import os, urllib.request
      req = urllib.request.Request("http://127.0.0.1:8000/v1/models",
                                   headers={"Authorization": "Bearer " + os.environ["VLLM_API_KEY"]})
      urllib.request.urlopen(req, timeout=4).read()
{{- else }}
httpGet:
  path: /v1/models
  port: http
{{- end }}
{{- end }}
