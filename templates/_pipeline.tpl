{{/*
The order of the stages inside one release.

Every stage's pods start at once; a stage that reads what another stage of the
same release writes waits for it in an init container of the chart's own
(`wait-for-inputs`, files/launch.py `wait`) that watches the producer's record
on the PVC: `.<dir>.stage.json` next to each output directory, which the
producer's launcher writes when it starts, fails and succeeds. An input is
ready when that record says "succeeded" with the producer's fingerprint — the
content hash in the name of the producer's Job or DeepSpeedJob of this
release — so an output left by an earlier run of other settings is never
taken for this release's. A producer that failed for good (no retries left)
fails its consumers at once, with its message; otherwise they wait up to
pipeline.waitTimeoutSeconds.

What each stage reads and writes comes from the path plan (llama-factory.paths)
and nowhere else. A stage waits only for producers in its own release: a
release of one stage renders no wait, as before.
*/}}

{{/* Paths (relative to the PVC) each stage reads and writes, as YAML. */}}
{{- define "llama-factory.io" -}}
{{- $root := required "llama-factory.io: root is required" .root -}}
{{- $paths := include "llama-factory.paths" (dict "root" $root) | fromYaml }}
{{- $eval := include "llama-factory.modelSource" (dict "root" $root "model" $root.Values.eval.model "lora" false) | fromYaml }}
{{- $serve := include "llama-factory.modelSource" (dict "root" $root "model" $root.Values.serving.model "lora" $root.Values.serving.lora) | fromYaml }}
workspace:
  reads: []
  writes: {{ ternary (list $paths.base) (list) $root.Values.download.enabled | toJson }}
sft:
  reads: {{ list $paths.base | toJson }}
  writes: {{ list $paths.sft | toJson }}
merge-sft:
  reads: {{ list $paths.base $paths.sft | toJson }}
  writes: {{ list $paths.sftModel | toJson }}
dpo:
  reads: {{ list $paths.sftModel | toJson }}
  writes: {{ list $paths.dpo | toJson }}
merge-dpo:
  reads: {{ list $paths.sftModel $paths.dpo | toJson }}
  writes: {{ list $paths.dpoModel | toJson }}
eval:
  reads: {{ list $eval.model | toJson }}
  writes: {{ list (printf "%s/%s" $paths.eval $root.Values.eval.model) | toJson }}
serve:
  reads: {{ compact (list $serve.model (default "" $serve.adapter)) | toJson }}
  writes: []
{{- end }}

{{/*
What a stage of this release waits for: a YAML list of {stage, path (absolute),
fingerprint}, one per input another stage of the release writes. Call with
(dict "root" $ "stage" "dpo").
*/}}
{{- define "llama-factory.waits" -}}
{{- $root := required "llama-factory.waits: root is required" .root -}}
{{- $stage := .stage }}
{{- $io := include "llama-factory.io" (dict "root" $root) | fromYaml }}
{{- $waits := list }}
{{- range $path := (index $io $stage).reads }}
{{- range $producer := $root.Values.stages }}
{{- if and (ne $producer $stage) (has $path (index $io $producer).writes) }}
{{- $waits = append $waits (dict "stage" $producer "path" (include "llama-factory.abs" (dict "root" $root "path" $path))
  "fingerprint" (include "llama-factory.stageParts" (dict "root" $root "stage" $producer) | fromJson).fingerprint) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $waits }}
{{- end }}

{{/*
The rendered parts of a producer stage (its fingerprint among them), memoised
per template file: a consumer's wait needs its producer's fingerprint, which
hashes the producer's pod spec, which holds the producer's own waits.
*/}}
{{- define "llama-factory.stageParts" -}}
{{- $root := required "llama-factory.stageParts: root is required" .root -}}
{{- $memo := get $root "llamaFactoryParts" | default dict }}
{{- $_ := set $root "llamaFactoryParts" $memo }}
{{- if not (hasKey $memo .stage) }}
{{- $tpl := get (dict "workspace" "llama-factory.downloadParts" "sft" "llama-factory.trainingParts" "dpo" "llama-factory.trainingParts"
  "merge-sft" "llama-factory.mergeParts" "merge-dpo" "llama-factory.mergeParts" "eval" "llama-factory.evalParts") .stage }}
{{- $_ := set $memo .stage (include $tpl (dict "root" $root "stage" .stage)) }}
{{- end }}
{{- get $memo .stage }}
{{- end }}

{{/*
Environment of a producer's container: its fingerprint (from the pod
annotation, so that the hash of the spec does not depend on itself) and how
many attempts its controller makes, for the record its consumers read. Call
with (dict "attempts" n "retried" "exit codes a retry follows, or empty: any").
*/}}
{{- define "llama-factory.producerEnv" -}}
{{- include "llama-factory.need" (list . "llama-factory.producerEnv" "attempts") -}}
- name: LLAMA_FACTORY_FINGERPRINT
  valueFrom:
    fieldRef:
      fieldPath: metadata.annotations['llama-factory/fingerprint']
- name: LLAMA_FACTORY_ATTEMPTS
  value: {{ .attempts | int | quote }}
{{- with .retried }}
- name: LLAMA_FACTORY_RETRIED_EXIT_CODES
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
The init container that waits for a stage's inputs, or nothing when it has
none in this release. Call with (dict "root" $ "stage" "dpo" "image" ref
"configPath" dir): the stage's ConfigMap, mounted at configPath, carries
launch.py.
*/}}
{{- define "llama-factory.waitInit" -}}
{{- $root := required "llama-factory.waitInit: root is required" .root -}}
{{- $waits := include "llama-factory.waits" (dict "root" $root "stage" .stage) | fromYamlArray }}
{{- if $waits }}
initContainers:
  # Waits until every stage this one reads from has finished in this release
  # (files/launch.py wait); `kubectl logs <pod> -c wait-for-inputs` says on what.
  - name: wait-for-inputs
    image: {{ .image }}
    imagePullPolicy: {{ $root.Values.common.imagePullPolicy }}
    command:
      - python3
      - -u
      - {{ printf "%s/launch.py" .configPath }}
      - wait
      - {{ printf "--timeout=%d" (int $root.Values.pipeline.waitTimeoutSeconds) }}
      - {{ printf "--interval=%d" (int $root.Values.pipeline.waitIntervalSeconds) }}
      {{- range $waits }}
      - {{ printf "%s=%s@%s" .stage .path .fingerprint | quote }}
      {{- end }}
    resources:
      requests:
        cpu: 10m
        memory: 64Mi
      limits:
        cpu: 100m
        memory: 128Mi
    {{- with $root.Values.common.containerSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: workspace
        mountPath: {{ $root.Values.storage.mountPath }}
        readOnly: true
      - name: config
        mountPath: {{ .configPath }}
        readOnly: true
{{- end }}
{{- end }}

{{/*
Job fields of a stage that waits: its deadline also covers the wait, and a
wait that can never succeed (exit 3: the producer failed for good; 4: timed
out) fails the Job at once instead of using up its retries. Call with (dict
"root" $ "stage" s "policy" stage-values-block).
*/}}
{{- define "llama-factory.waitJobPolicy" -}}
{{- $root := required "llama-factory.waitJobPolicy: root is required" .root -}}
{{- $waits := include "llama-factory.waits" (dict "root" $root "stage" .stage) | fromYamlArray }}
{{- $policy := deepCopy .policy }}
{{- if and $waits (not (kindIs "invalid" $policy.activeDeadlineSeconds)) }}
{{- $_ := set $policy "activeDeadlineSeconds" (add $policy.activeDeadlineSeconds $root.Values.pipeline.waitTimeoutSeconds) }}
{{- end }}
{{- include "llama-factory.jobPolicy" $policy }}
{{- if $waits }}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: wait-for-inputs
        operator: In
        values: [3, 4]
{{- end }}
{{- end }}
