{{/*
Pods: environment, volumes and the Job pod builder every Job-based stage uses
(resources in _resources.tpl, scheduling and pod metadata in _placement.tpl).
*/}}

{{/*
Environment shared by every container: Hugging Face endpoint, cache and token
(by reference only), then common.extraEnv. Call with (dict "root" $).
*/}}
{{- define "llama-factory.env" -}}
{{- $root := required "llama-factory.env: root is required" .root -}}
- name: HF_HOME
  value: {{ include "llama-factory.abs" (dict "root" $root "path" (include "llama-factory.paths" (dict "root" $root) | fromYaml).hfHome) | quote }}
{{- with $root.Values.common.huggingface.endpoint }}
- name: HF_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $root.Values.common.huggingface.existingSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $root.Values.common.huggingface.tokenKey | quote }}
{{- end }}
{{- range $name, $value := $root.Values.common.extraEnv }}
- name: {{ $name | quote }}
  {{- if kindIs "map" $value }}
  {{- toYaml $value | nindent 2 }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Volumes of a stage pod: the workspace PVC, /dev/shm sized, optional config
ConfigMap, then common.extraVolumes. Call with
(dict "root" $ "shmSize" "16Gi" "configMap" "name-or-empty").
*/}}
{{- define "llama-factory.volumes" -}}
{{- $root := required "llama-factory.volumes: root is required" .root -}}
- name: workspace
  persistentVolumeClaim:
    claimName: {{ include "llama-factory.claimName" (dict "root" $root) | quote }}
- name: tmp
  emptyDir: {}
{{- if .shmSize }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .shmSize }}
{{- end }}
{{- if .configMap }}
- name: config
  configMap:
    name: {{ .configMap }}
{{- end }}
{{- range $name, $volume := $root.Values.common.extraVolumes }}
- name: {{ $name | quote }}
  {{- toYaml $volume.source | nindent 2 }}
{{- end }}
{{- end }}

{{/* Mounts matching llama-factory.volumes; same arguments plus "configPath". */}}
{{- define "llama-factory.volumeMounts" -}}
{{- $root := required "llama-factory.volumeMounts: root is required" .root -}}
- name: workspace
  mountPath: {{ $root.Values.storage.mountPath }}
- name: tmp
  mountPath: /tmp
{{- if .shmSize }}
- name: dshm
  mountPath: /dev/shm
{{- end }}
{{- if .configMap }}
- name: config
  mountPath: {{ .configPath }}
  readOnly: true
{{- end }}
{{- range $name, $volume := $root.Values.common.extraVolumes }}
- name: {{ $name | quote }}
  mountPath: {{ $volume.mountPath }}
  {{- if $volume.readOnly }}
  readOnly: true
  {{- end }}
{{- end }}
{{- end }}

{{/* backoffLimit, deadline and TTL of a batch/v1 Job; a pure value helper: takes the stage's values block itself. */}}
{{- define "llama-factory.jobPolicy" -}}
backoffLimit: {{ .backoffLimit | int }}
{{- if not (kindIs "invalid" .activeDeadlineSeconds) }}
activeDeadlineSeconds: {{ .activeDeadlineSeconds | int }}
{{- end }}
{{- if not (kindIs "invalid" .ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ .ttlSecondsAfterFinished | int }}
{{- end }}
{{- end }}

{{/*
Pod spec of a one-container batch Job running the LLaMA-Factory image. Call
with (dict "root" $ "vctx" volumes-context "name" container-name "stage"
pipeline-stage "command" list "resources" r "gpus" n "attempts" n "env"
optional-extra-env-list): "attempts" (the Job's backoffLimit + 1) marks a
stage whose launcher records its outcome for the stages after it.
*/}}
{{- define "llama-factory.jobPodSpec" -}}
{{- $root := required "llama-factory.jobPodSpec: root is required" .root -}}
{{- $block := include "llama-factory.block" .stage }}
{{- $image := include "llama-factory.image" (dict "root" $root "image" $root.Values.images.llamaFactory "block" $block) }}
restartPolicy: Never
{{- include "llama-factory.podCommon" (dict "root" $root "t9k" false "block" $block "gpus" .gpus) | trim | nindent 0 }}
{{- with include "llama-factory.waitInit" (dict "root" $root "stage" .stage "image" $image "configPath" .vctx.configPath) }}
{{- . | nindent 0 }}
{{- end }}
{{- $env := include "llama-factory.homeEnv" dict }}
{{- if .attempts }}
{{- $env = printf "%s\n%s" $env (include "llama-factory.producerEnv" (dict "attempts" .attempts)) }}
{{- end }}
{{- with .env }}
{{- $env = printf "%s\n%s" $env (toYaml .) }}
{{- end }}
containers:
  {{- include "llama-factory.container" (dict "root" $root "name" .name "image" $image "command" .command "env" $env
    "resources" .resources "gpus" .gpus "mounts" .vctx) | trim | nindent 2 }}
volumes:
  {{- include "llama-factory.volumes" .vctx | nindent 2 }}
{{- end }}

{{/* HOME for containers with a read-only root filesystem: caches go to the /tmp emptyDir. A constant: call with dict. */}}
{{- define "llama-factory.homeEnv" -}}
- name: HOME
  value: /tmp
{{- end }}
