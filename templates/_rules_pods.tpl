{{/*
Cross-field rules of every pod: resources and /dev/shm, extra volumes beside
the chart's own.
*/}}

{{/*
Every pod: requests within limits, /dev/shm inside the memory limit.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.resources" -}}
{{- $root := required "llama-factory.rules.resources: root is required" .root -}}
{{- $v := $root.Values }}
{{- $t := $v.training }}
{{- $errors := list }}
{{- $pods := dict "training" $t "notebook" $v.notebook "eval" $v.eval "serving" $v.serving "merge" $v.merge "download" $v.download }}
{{- range $name, $c := $pods }}
{{- $r := $c.resources }}
{{- if gt (include "llama-factory.mebibytes" $r.requests.memory | int) (include "llama-factory.mebibytes" $r.limits.memory | int) }}
{{- $errors = append $errors (printf "%s.resources.requests.memory: %v is above the limit %v. Fix: lower the request or raise the limit." $name $r.requests.memory $r.limits.memory) }}
{{- end }}
{{- if gt (include "llama-factory.millicores" $r.requests.cpu | int) (include "llama-factory.millicores" $r.limits.cpu | int) }}
{{- $errors = append $errors (printf "%s.resources.requests.cpu: %v is above the limit %v. Fix: lower the request or raise the limit." $name $r.requests.cpu $r.limits.cpu) }}
{{- end }}
{{- if $c.shmSize }}
{{- if ge (mul (include "llama-factory.mebibytes" $c.shmSize | int) 2) (include "llama-factory.mebibytes" $r.limits.memory | int) }}
{{- $errors = append $errors (printf "%s.shmSize: /dev/shm (%v) is memory and counts against %s.resources.limits.memory (%v); it may take at most half of it. Fix: lower shmSize or raise the memory limit." $name $c.shmSize $name $r.limits.memory) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/*
What the chart owns cannot be set through common.extraVolumes: its volume
names and mount paths; and each extra volume gets its own path.
Call with (dict "root" $); returns a JSON list of problems, one line each.
*/}}
{{- define "llama-factory.rules.extraVolumes" -}}
{{- $root := required "llama-factory.rules.extraVolumes: root is required" .root -}}
{{- $v := $root.Values }}
{{- $errors := list }}
{{- $owned := list "/tmp" "/dev/shm" (include "llama-factory.configPath" dict) $v.storage.mountPath }}
{{- $seenPaths := dict }}
{{- range $name, $vol := $v.common.extraVolumes }}
{{- if has $name (list "workspace" "tmp" "dshm" "config") }}
{{- $errors = append $errors (printf "common.extraVolumes.%s: the chart names its own volume %q. Fix: give this volume another name." $name $name) }}
{{- end }}
{{- /* One directory, however written: /data, /data/ and /data/./ are the same mount point. */}}
{{- $at := clean $vol.mountPath }}
{{- if has $at $owned }}
{{- $errors = append $errors (printf "common.extraVolumes.%s.mountPath: %s is where the chart mounts its own volume. Fix: pick another path." $name $vol.mountPath) }}
{{- else if hasKey $seenPaths $at }}
{{- $errors = append $errors (printf "common.extraVolumes.%s.mountPath: %s is also the mount path of common.extraVolumes.%s. Fix: give each volume its own path." $name $vol.mountPath (get $seenPaths $at)) }}
{{- end }}
{{- $_ := set $seenPaths $at $name }}
{{- end }}
{{- toJson $errors }}
{{- end }}
