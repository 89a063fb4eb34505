{{/*
Resources of a container: quantities the chart compares, and the requests and
limits of a container.
*/}}

{{/*
Quantities. The schema restricts memory to Mi/Gi/Ti and CPU to cores or
millicores so that the chart can compare them; these return integers, and
fail on anything else (a unit they do not know must not compare as 0).
Pure value helpers: each takes the quantity itself, not a dict.
*/}}
{{- define "llama-factory.mebibytes" -}}
{{- $quantity := toString . }}
{{- if not (regexMatch "^[0-9]+(Mi|Gi|Ti)$" $quantity) }}
{{- fail (printf "llama-factory.mebibytes: %q is not a memory quantity the chart compares (a whole number of Mi, Gi or Ti). Fix: write it as e.g. 512Mi, 16Gi or 1Ti." $quantity) }}
{{- end }}
{{- if hasSuffix "Ti" $quantity }}{{ mul (trimSuffix "Ti" $quantity | atoi) 1048576 }}
{{- else if hasSuffix "Gi" $quantity }}{{ mul (trimSuffix "Gi" $quantity | atoi) 1024 }}
{{- else }}{{ trimSuffix "Mi" $quantity | atoi }}
{{- end }}
{{- end }}

{{- define "llama-factory.millicores" -}}
{{- $quantity := toString . }}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|[0-9]+m)$" $quantity) }}
{{- fail (printf "llama-factory.millicores: %q is not a CPU quantity the chart compares (cores such as 8 or 0.5, or millicores such as 500m). Fix: write it in one of those forms." $quantity) }}
{{- end }}
{{- if hasSuffix "m" $quantity }}{{ trimSuffix "m" $quantity | atoi }}
{{- else }}{{ mulf (float64 $quantity) 1000 | int }}
{{- end }}
{{- end }}

{{/*
Container resources; call with (dict "root" $ "resources" .Values.x.resources "gpus" N),
plus "rdma" (training.rdma) for its device.
*/}}
{{- define "llama-factory.resources" -}}
{{- $root := required "llama-factory.resources: root is required" .root -}}
{{- $gpuName := $root.Values.common.gpu.resourceName }}
requests:
  cpu: {{ .resources.requests.cpu | quote }}
  memory: {{ .resources.requests.memory | quote }}
  {{- if and $gpuName (gt (int .gpus) 0) }}
  {{ $gpuName }}: {{ .gpus | int }}
  {{- end }}
  {{- if and .rdma .rdma.enabled }}
  {{ .rdma.resourceName }}: 1
  {{- end }}
limits:
  cpu: {{ .resources.limits.cpu | quote }}
  memory: {{ .resources.limits.memory | quote }}
  {{- if and $gpuName (gt (int .gpus) 0) }}
  {{ $gpuName }}: {{ .gpus | int }}
  {{- end }}
  {{- if and .rdma .rdma.enabled }}
  {{ .rdma.resourceName }}: 1
  {{- end }}
{{- end }}
