{{/*
On every object, as the kustomize base's `labels:` has it. Names are fixed, not the release's:
one install per cluster (the ClusterRoles, the admission policy and the functions' group are
cluster-wide), and the same names as `kubectl apply -k deploy/`, so either installs over the
other.
*/}}
{{- define "nlb-port-pool.labels" -}}
app.kubernetes.io/part-of: nlb-port-pool
{{- end }}
