{{/*
Cross-field rules that values.schema.json cannot express. Each area's rules
live in their own file (_rules_<area>.tpl, model facts and the PVC size in
_models.tpl), one helper per rule that returns its problems as a JSON list,
one line each naming the field and the fix; llama-factory.validate collects
them all and fails once, so a user sees every problem of a values file in
one run.
*/}}

{{/*
Every rule, in the order its problems are listed. Call with (dict "root" $)
(templates/validate.yaml).
*/}}
{{- define "llama-factory.validate" -}}
{{- $root := required "llama-factory.validate: root is required" .root -}}
{{- $errors := list }}
{{- range $rule := list "trainingMemory" "training" "merge" "eval" "serving" "ownedPaths" "checkpointing"
  "resources" "extraVolumes" "labels" "env" "secrets" "decimals" }}
{{- $errors = concat $errors (include (printf "llama-factory.rules.%s" $rule) (dict "root" $root) | fromJsonArray) }}
{{- end }}
{{- /* Model facts (files/models.yaml) and the PVC size they need (templates/_models.tpl). */}}
{{- $errors = concat $errors (include "llama-factory.modelErrors" (dict "root" $root) | fromJsonArray) (include "llama-factory.storageErrors" (dict "root" $root) | fromJsonArray) }}
{{- range $rule := list "storage" "yaml" }}
{{- $errors = concat $errors (include (printf "llama-factory.rules.%s" $rule) (dict "root" $root) | fromJsonArray) }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\n\nllama-factory: invalid values:\n  - %s\n" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}
