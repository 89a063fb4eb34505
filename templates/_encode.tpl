{{/*
Encoders: command-line flags, scalars, LLaMA-Factory YAML and overrides.
*/}}

{{/*
Renders a map of command-line flags as a list of "--flag=value" arguments
(true: a bare "--flag"; false or null: left out), sorted by flag. A pure value
helper: takes the flag map itself.
*/}}
{{- define "llama-factory.flagArgs" -}}
{{- range $k, $v := . }}
{{- if kindIs "bool" $v }}
{{- if $v }}
- {{ printf "--%s" $k | quote }}
{{- end }}
{{- else if kindIs "float64" $v }}
- {{ printf "--%s=%s" $k (include "llama-factory.scalar" $v) | quote }}
{{- else if not (kindIs "invalid" $v) }}
- {{ printf "--%s=%v" $k $v | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A value as YAML that Python's yaml.safe_load reads back with the same type:
integral numbers as integers, other floats in plain decimal notation (Go's
`1e-05` would load as a string), anything else as JSON (a YAML subset).
A pure value helper: takes the value itself.
*/}}
{{- define "llama-factory.scalar" -}}
{{- if kindIs "float64" . }}
{{- if eq (floor .) . }}{{ printf "%.0f" . }}{{ else }}{{ regexReplaceAll "0+$" (printf "%.15f" .) "" }}{{ end }}
{{- else }}
{{- toJson . }}
{{- end }}
{{- end }}

{{/*
A LLaMA-Factory config file. Call with (dict "sections" (list (list "model"
(list "key" …)) …) "values" $dict): keys are printed in section order, then
any key no section names under "### extra" (the escape hatch), so an override
replaces a key instead of repeating it.
*/}}
{{- define "llama-factory.lfYaml" -}}
{{- include "llama-factory.need" (list . "llama-factory.lfYaml" "sections" "values") }}
{{- $left := deepCopy .values }}
{{- range $section := .sections }}
{{- $printed := false }}
{{- range $key := index $section 1 }}
{{- if hasKey $left $key }}
{{- if not $printed }}
### {{ index $section 0 }}
{{- $printed = true }}
{{- end }}
{{ $key }}: {{ include "llama-factory.scalar" (index $left $key) }}
{{- $_ := unset $left $key }}
{{- end }}
{{- end }}
{{- end }}
{{- if $left }}
### extra (training.extraArgs, <stage>.extraArgs, merge.extraArgs)
{{- range $key, $v := $left }}
{{ $key }}: {{ include "llama-factory.scalar" $v }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Deep-merges .src into the map .dst in place, .src winning — false and 0
included (sprig's mergeOverwrite skips such "empty" values, so an escape hatch
could not turn a setting off). Call with (dict "dst" $map "src" $overrides).
*/}}
{{- define "llama-factory.override" -}}
{{- include "llama-factory.need" (list . "llama-factory.override" "dst" "src") }}
{{- $dst := .dst }}
{{- range $k, $v := .src }}
{{- if and (kindIs "map" $v) (kindIs "map" (get $dst $k)) }}
{{- include "llama-factory.override" (dict "dst" (get $dst $k) "src" $v) }}
{{- else }}
{{- $_ := set $dst $k $v }}
{{- end }}
{{- end }}
{{- end }}
