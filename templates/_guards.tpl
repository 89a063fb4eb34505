{{/*
The argument guard of a helper that takes a dict of its own arguments (no
"root"): fails naming the helper and the missing key, so a wrong call fails at
its caller instead of rendering an empty value. An argument may be present and
empty (an empty override map, a null value). Call with
(list $args "llama-factory.<helper>" "key" …).
*/}}
{{- define "llama-factory.need" -}}
{{- $args := index . 0 }}
{{- $helper := index . 1 }}
{{- if not (kindIs "map" $args) }}
{{- fail (printf "%s: takes a dict of its arguments, got a %s" $helper (kindOf $args)) }}
{{- end }}
{{- range $key := slice . 2 }}
{{- if not (hasKey $args $key) }}
{{- fail (printf "%s: argument %q is required" $helper $key) }}
{{- end }}
{{- end }}
{{- end }}
