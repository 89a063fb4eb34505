{{/*
One container of any workload: the Job stages (llama-factory.jobPodSpec), the
DeepSpeedJob worker, the serve Deployment and the Notebook, so that what every
container shares cannot drift: image and pull policy, the working directory,
the chart's environment first (llama-factory.env: Hugging Face, then
common.extraEnv) and the workload's own after it, resources, the security
context (common.containerSecurityContext unless the workload gives its own)
and the mounts matching llama-factory.volumes. Returns one YAML list item.
Call with (dict "root" $ "name" n "image" ref "resources" r "gpus" n "mounts"
volumes-context), and as a workload needs: "comment" (a YAML comment line above
the item), "noWorkingDir" true, "command" (a list), "head" (YAML after the
working directory: a command and args written out), "env" (YAML list: the
workload's variables, after the chart's), "body" (YAML between env and
resources: ports, probes), "rdma" (training.rdma), "securityContext" (a map,
replacing common.containerSecurityContext).
*/}}
{{- define "llama-factory.container" -}}
{{- $root := required "llama-factory.container: root is required" .root -}}
{{- with .comment }}
# {{ . }}
{{- end }}
- name: {{ required "llama-factory.container: name is required" .name }}
  image: {{ required "llama-factory.container: image is required" .image }}
  imagePullPolicy: {{ $root.Values.common.imagePullPolicy }}
  {{- if not .noWorkingDir }}
  workingDir: {{ $root.Values.storage.mountPath }}
  {{- end }}
  {{- with .command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .head }}
  {{- . | nindent 2 }}
  {{- end }}
  env:
    {{- include "llama-factory.env" (dict "root" $root) | nindent 4 }}
    {{- with .env }}
    {{- . | nindent 4 }}
    {{- end }}
  {{- with .body }}
  {{- . | nindent 2 }}
  {{- end }}
  resources:
    {{- include "llama-factory.resources" (dict "root" $root "resources" .resources "gpus" .gpus "rdma" .rdma) | trim | nindent 4 }}
  {{- with ternary .securityContext $root.Values.common.containerSecurityContext (hasKey . "securityContext") }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- include "llama-factory.volumeMounts" (required "llama-factory.container: mounts is required" .mounts) | nindent 4 }}
{{- end }}
