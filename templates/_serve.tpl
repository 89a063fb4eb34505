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

{{/*
The vLLM container's own parts, for llama-factory.container (serve.yaml). Call
each with (dict "root" $), serveArgs also with "model" (the model directory on
the PVC) and "flags" (vLLM's flags). serveArgs: its command and arguments;
serveEnv: its environment after the chart's; serveProbes: its port and probes.
*/}}
{{- define "llama-factory.serveArgs" -}}
{{- $root := required "llama-factory.serveArgs: root is required" .root -}}
command: ["vllm", "serve"]
args:
  - {{ include "llama-factory.abs" (dict "root" $root "path" (required "llama-factory.serveArgs: model is required" .model)) | quote }}
  {{- include "llama-factory.flagArgs" .flags | trim | nindent 2 }}
{{- end }}

{{- define "llama-factory.serveEnv" -}}
{{- $root := required "llama-factory.serveEnv: root is required" .root -}}
{{- $serving := $root.Values.serving -}}
- name: HF_HUB_OFFLINE
  value: "1"
{{- include "llama-factory.homeEnv" dict | nindent 0 }}
- name: VLLM_NO_USAGE_STATS
  value: "1"
{{- with $serving.apiKey.existingSecret }}
- name: VLLM_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $serving.apiKey.key | quote }}
{{- end }}
{{- end }}

{{- define "llama-factory.serveProbes" -}}
{{- $root := required "llama-factory.serveProbes: root is required" .root -}}
{{- $serving := $root.Values.serving -}}
ports:
  - name: http
    containerPort: 8000
    protocol: TCP
# /health answers as soon as the server process is up; /v1/models only
# once the model is loaded, so startup and readiness wait on it. The
# startup budget is periodSeconds × failureThreshold.
startupProbe:
  {{- include "llama-factory.modelsProbe" (dict "root" $root) | trim | nindent 2 }}
  periodSeconds: {{ $serving.startupProbe.periodSeconds | int }}
  failureThreshold: {{ $serving.startupProbe.failureThreshold | int }}
  timeoutSeconds: 5
readinessProbe:
  {{- include "llama-factory.modelsProbe" (dict "root" $root) | trim | nindent 2 }}
  periodSeconds: 10
  failureThreshold: 3
  timeoutSeconds: 5
livenessProbe:
  httpGet:
    path: /health
    port: http
  periodSeconds: 10
  failureThreshold: 3
  timeoutSeconds: 5
{{- end }}
