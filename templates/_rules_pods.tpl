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
{{- $values := $root.Values }}
{{- $training := $values.training }}
{{- $errors := list }}
{{- $pods := dict "training" $training "notebook" $values.notebook "eval" $values.eval "serving" $values.serving "merge" $values.merge "download" $values.download }}
{{- range $name, $pod := $pods }}
{{- $resources := $pod.resources }}
{{- if gt (include "llama-factory.mebibytes" $resources.requests.memory | int) (include "llama-factory.mebibytes" $resources.limits.memory | int) }}
{{- $errors = append $errors (printf "%s.resources.requests.memory: %v is above the limit %v. Fix: lower the request or raise the limit." $name $resources.requests.memory $resources.limits.memory) }}
{{- end }}
{{- if gt (include "llama-factory.millicores" $resources.requests.cpu | int) (include "llama-factory.millicores" $resources.limits.cpu | int) }}
{{- $errors = append $errors (printf "%s.resources.requests.cpu: %v is above the limit %v. Fix: lower the request or raise the limit." $name $resources.requests.cpu $resources.limits.cpu) }}
{{- end }}
{{- if $pod.shmSize }}
{{- if ge (mul (include "llama-factory.mebibytes" $pod.shmSize | int) 2) (include "llama-factory.mebibytes" $resources.limits.memory | int) }}
{{- $errors = append $errors (printf "%s.shmSize: /dev/shm (%v) is memory and counts against %s.resources.limits.memory (%v); it may take at most half of it. Fix: lower shmSize or raise the memory limit." $name $pod.shmSize $name $resources.limits.memory) }}
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
{{- $values := $root.Values }}
{{- $errors := list }}
{{- $owned := list "/tmp" "/dev/shm" (include "llama-factory.configPath" dict) $values.storage.mountPath }}
{{- $seenPaths := dict }}
{{- range $name, $vol := $values.common.extraVolumes }}
{{- if has $name (list "workspace" "tmp" "dshm" "config") }}
{{- $errors = append $errors (printf "common.extraVolumes.%s: the chart names its own volume %q. Fix: give this volume another name." $name $name) }}
{{- end }}
{{- /* One directory, however written: /data, /data/ and /data/./ are the same mount point. */}}
{{- $mountPath := clean $vol.mountPath }}
{{- if has $mountPath $owned }}
{{- $errors = append $errors (printf "common.extraVolumes.%s.mountPath: %s is where the chart mounts its own volume. Fix: pick another path." $name $vol.mountPath) }}
{{- else if hasKey $seenPaths $mountPath }}
{{- $errors = append $errors (printf "common.extraVolumes.%s.mountPath: %s is also the mount path of common.extraVolumes.%s. Fix: give each volume its own path." $name $vol.mountPath (get $seenPaths $mountPath)) }}
{{- end }}
{{- $_ := set $seenPaths $mountPath $name }}
{{- end }}
{{- toJson $errors }}
{{- end }}
