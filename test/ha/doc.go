// Package ha runs `vouch serve` replicas sharing a Redis master behind Redis
// Sentinels, all real processes on 127.0.0.1, and kills the master under
// load: the replicas must keep answering right and within their budget,
// and follow the Sentinels to the new master. It holds tests only; see
// docs/serving.md, "High availability".
package ha
