{{/*
Cross-field rules of value forms the schema cannot check, and of the PVC:
decimals given as text, values YAML cannot carry, the PVC's access modes.
*/}}

{{/*
Decimals given as text (`--set` makes a string of 0.00002): the schema bounds numbers only.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.decimals" -}}
{{- $root := required "llama-factory.rules.decimals: root is required" .root -}}
{{- $values := $root.Values }}
{{- $errors := list }}
{{- $bounds := dict "minimum" "at least %v" "exclusiveMinimum" "greater than %v" "maximum" "at most %v" "exclusiveMaximum" "less than %v" }}
{{- range $field := include "llama-factory.decimalFields" dict | fromJsonArray }}
{{- $path := index $field 0 }}
{{- $value := $values }}
{{- range $k := splitList "." $path }}{{ $value = index $value $k }}{{ end }}
{{- if kindIs "string" $value }}
{{- $number := float64 $value }}
{{- $range := list }}
{{- $out := false }}
{{- range $bound := list "minimum" "exclusiveMinimum" "maximum" "exclusiveMaximum" }}
{{- if hasKey (index $field 1) $bound }}
{{- $limit := float64 (index (index $field 1) $bound) }}
{{- $range = append $range (printf (get $bounds $bound) $limit) }}
{{- if or (and (eq $bound "minimum") (lt $number $limit)) (and (eq $bound "exclusiveMinimum") (le $number $limit)) (and (eq $bound "maximum") (gt $number $limit)) (and (eq $bound "exclusiveMaximum") (ge $number $limit)) }}{{ $out = true }}{{ end }}
{{- end }}
{{- end }}
{{- if $out }}
{{- $errors = append $errors (printf "%s: %q must be %s. Fix: set %s to a number in that range (a decimal given with --set arrives as text and is checked the same way)." $path $value (join " and " $range) $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
The PVC is mounted by several pods at once (Notebook, download, every stage) and written to.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.storage" -}}
{{- $root := required "llama-factory.rules.storage: root is required" .root -}}
{{- $values := $root.Values }}
{{- $errors := list }}
{{- $modes := $values.storage.accessModes }}
{{- if has "ReadWriteOncePod" $modes }}
{{- $errors = append $errors (printf "storage.accessModes: ReadWriteOncePod lets one pod at a time mount the PVC (and the API server refuses it beside other modes), while the Notebook, the download Job and the stages mount it together. Fix: set storage.accessModes to [ReadWriteMany] (or [ReadWriteOnce] when every pod runs on one node).") }}
{{- else if not (or (has "ReadWriteMany" $modes) (has "ReadWriteOnce" $modes)) }}
{{- $errors = append $errors (printf "storage.accessModes: %s gives no pod write access, but every stage writes to the PVC. Fix: set storage.accessModes to [ReadWriteMany] (or [ReadWriteOnce] when every pod runs on one node)." (toJson $modes)) }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
Every value must survive YAML: Helm 3 renders one that cannot as nothing.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.yaml" -}}
{{- $root := required "llama-factory.rules.yaml: root is required" .root -}}
{{- $values := $root.Values }}
{{- $errors := list }}
{{- with include "llama-factory.unyamlable" (dict "value" $values "path" "") }}
{{- $errors = append $errors (printf "%s: holds a control character (in a key or a value), which YAML cannot carry (it would render as an empty string). Fix: remove it from the value." (trimPrefix "." .)) }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
The path of the first value YAML cannot carry (a control character such as
U+0000-U+0008 or U+007F-U+009F, which --set-json or a quoted "\u007f" in a
values file can bring in), or nothing. Helm 3's toYaml turns such a value into
an empty string without an error, so a ConfigMap would silently lose its data.
Takes dict "value" "path".
*/}}
{{- define "llama-factory.unyamlable" -}}
{{- include "llama-factory.need" (list . "llama-factory.unyamlable" "value" "path") }}
{{- if ne (toYaml .value) "" }}
{{- else if kindIs "map" .value }}
{{- $found := "" }}
{{- range $k, $x := .value }}
{{- $key := ternary (printf ".%s" $k) (printf "[%q]" $k) (regexMatch "^[A-Za-z0-9_-]+$" $k) }}
{{- if not $found }}{{ $found = include "llama-factory.unyamlable" (dict "value" $x "path" (printf "%s%s" $.path $key)) }}{{ end }}
{{- end }}
{{- $found | default .path }}
{{- else if kindIs "slice" .value }}
{{- $found := "" }}
{{- range $i, $x := .value }}
{{- if not $found }}{{ $found = include "llama-factory.unyamlable" (dict "value" $x "path" (printf "%s[%d]" $.path $i)) }}{{ end }}
{{- end }}
{{- $found | default .path }}
{{- else }}
{{- .path }}
{{- end }}
{{- end }}
