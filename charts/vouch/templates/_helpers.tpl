{{/* The chart's name, or nameOverride. */}}
{{- define "vouch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name of the resources: fullnameOverride, or the release name
followed by the chart's name unless it already contains it. */}}
{{- define "vouch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "vouch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "vouch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select vouch's pods. */}}
{{- define "vouch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vouch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{/* Labels that select the internal Redis' pod. */}}
{{- define "vouch.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "vouch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "vouch.serviceAccountName" -}}
{{- default (include "vouch.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "vouch.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The names of the TLS Secret, the Redis HMAC key Secret and the
internal Redis' password Secret. */}}
{{- define "vouch.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secretName is required with tls.mode secret" .Values.tls.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "vouch.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "vouch.redisHMACSecretName" -}}
{{- default (printf "%s-redis-hmac" (include "vouch.fullname" .)) .Values.redis.hmac.existingSecret -}}
{{- end -}}

{{- define "vouch.redisAuthSecretName" -}}
{{- if .Values.redis.auth.existingSecret -}}
{{- .Values.redis.auth.existingSecret -}}
{{- else if eq .Values.redis.mode "internal" -}}
{{- printf "%s-redis-auth" (include "vouch.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "vouch.redisName" -}}
{{- printf "%s-redis" (include "vouch.fullname" .) -}}
{{- end -}}

{{/* The DNS names of vouch's Service. */}}
{{- define "vouch.dnsNames" -}}
{{- $svc := include "vouch.fullname" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}

{{/* The namespaces neither the Constraint nor the webhooks check. */}}
{{- define "vouch.excludedNamespaces" -}}
{{- concat (list .Release.Namespace) .Values.excludedNamespaces | uniq | toJson -}}
{{- end -}}

{{/*
vouch.tls: a dict {caCert, cert, key, caKey} of PEM. With tls.mode generate
the serving certificate, with certManager (no issuerRef) the CA for the
chart's CA Issuer. What the cluster holds (lookup) is kept, so that an
upgrade keeps the certificates the webhooks and the Provider trust; else
generated. Computed once per render and kept in .Values' scratch dict.
*/}}
{{- define "vouch.generatedTLS" -}}
{{- $fullname := include "vouch.fullname" . -}}
{{- $days := int .Values.tls.validityDays -}}
{{- if eq .Values.tls.mode "generate" -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (printf "%s-tls" $fullname) -}}
{{- if and $old (index ($old.data | default dict) "ca.crt") (index ($old.data | default dict) "tls.crt") (index ($old.data | default dict) "tls.key") -}}
{{- dict "caCert" (index $old.data "ca.crt" | b64dec) "cert" (index $old.data "tls.crt" | b64dec) "key" (index $old.data "tls.key" | b64dec) | toJson -}}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" $fullname) $days -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $fullname .Release.Namespace) nil (include "vouch.dnsNames" . | fromJsonArray) $days $ca -}}
{{- dict "caCert" $ca.Cert "cert" $cert.Cert "key" $cert.Key | toJson -}}
{{- end -}}
{{- else if and (eq .Values.tls.mode "certManager") (not .Values.tls.certManager.issuerRef.name) -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (printf "%s-ca" $fullname) -}}
{{- if and $old (index ($old.data | default dict) "tls.crt") (index ($old.data | default dict) "tls.key") -}}
{{- dict "caCert" (index $old.data "tls.crt" | b64dec) "caKey" (index $old.data "tls.key" | b64dec) | toJson -}}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" $fullname) $days -}}
{{- dict "caCert" $ca.Cert "caKey" $ca.Key | toJson -}}
{{- end -}}
{{- else -}}
{{- dict | toJson -}}
{{- end -}}
{{- end -}}

{{/* The certificates of this render, generated once (templates are
rendered separately: a second genCA would make another CA). */}}
{{- define "vouch.tls" -}}
{{- if not (hasKey .Values "__vouchTLS") -}}
{{- $_ := set .Values "__vouchTLS" (include "vouch.generatedTLS" . | fromJson) -}}
{{- end -}}
{{- index .Values "__vouchTLS" | toJson -}}
{{- end -}}

{{/* Base64 of the CA certificate the Provider and the webhooks trust. */}}
{{- define "vouch.caBundle" -}}
{{- $tls := include "vouch.tls" . | fromJson -}}
{{- if $tls.caCert -}}
{{- $tls.caCert | b64enc -}}
{{- else if .Values.tls.caBundle -}}
{{- .Values.tls.caBundle -}}
{{- else -}}
{{- $secretName := include "vouch.tlsSecretName" . -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- $ca := index (($secret | default dict).data | default dict) "ca.crt" -}}
{{- if $ca -}}
{{- $ca -}}
{{- else -}}
{{- fail (printf "tls.caBundle is required with tls.mode %s here: the CA that issued the Secret %s/%s cannot be read from the cluster (it does not exist yet, or has no ca.crt); set tls.caBundle to base64 of the issuing CA's PEM certificate" .Values.tls.mode .Release.Namespace $secretName) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The HMAC key of Redis entries, kept across upgrades. */}}
{{- define "vouch.redisHMACKey" -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "vouch.redisHMACSecretName" .) -}}
{{- $key := index (($old | default dict).data | default dict) .Values.redis.hmac.key -}}
{{- if $key -}}
{{- $key -}}
{{- else -}}
{{- randAlphaNum 64 | b64enc -}}
{{- end -}}
{{- end -}}
