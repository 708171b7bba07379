package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRedisSentinelFlags checks the flags that name a Redis master
// behind Sentinels: each bad combination is a usage error (exit 64) that
// names the flags and says what is wrong. Serving with them is tested in
// test/ha, against real Sentinels.
func TestServeRedisSentinelFlags(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("serve-test-hmac-key-0123456789abcdefghij\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--tls-cert-file", "x", "--tls-key-file", "y"}
	sentinels := []string{"--redis-sentinel-addrs", "127.0.0.1:26379,127.0.0.1:26380", "--redis-sentinel-master", "vouch"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"with --redis-addr", append([]string{"--redis-addr", "127.0.0.1:6379", "--redis-hmac-key-file", keyFile}, sentinels...), []string{"--redis-addr and --redis-sentinel-addrs exclude each other"}},
		{"no master name", []string{"--redis-sentinel-addrs", "127.0.0.1:26379", "--redis-hmac-key-file", keyFile}, []string{"--redis-sentinel-addrs needs --redis-sentinel-master"}},
		{"master name alone", []string{"--redis-sentinel-master", "vouch", "--redis-hmac-key-file", keyFile}, []string{"--redis-sentinel-master needs --redis-sentinel-addrs"}},
		{"no port", []string{"--redis-sentinel-addrs", "127.0.0.1:26379,sentinel", "--redis-sentinel-master", "vouch", "--redis-hmac-key-file", keyFile}, []string{`--redis-sentinel-addrs: "sentinel" is not HOST:PORT`}},
		{"empty entry", []string{"--redis-sentinel-addrs", "127.0.0.1:26379,", "--redis-sentinel-master", "vouch", "--redis-hmac-key-file", keyFile}, []string{`--redis-sentinel-addrs: "" is not HOST:PORT`}},
		{"no key", sentinels, []string{"--redis-sentinel-addrs needs --redis-hmac-key-file", "--redis-insecure-unauthenticated"}},
		{"tls without redis", []string{"--redis-tls"}, []string{"--redis-tls and --redis-ca-file need --redis-addr or --redis-sentinel-addrs"}},
		{"key without redis", []string{"--redis-hmac-key-file", keyFile}, []string{"need --redis-addr or --redis-sentinel-addrs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := vouchRun(t, append(base, tc.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	code, out, _ := vouchRun(t, "serve", "--help")
	for _, w := range []string{"--redis-sentinel-addrs HOST:PORT[,HOST:PORT...]", "--redis-sentinel-master NAME", "VOUCH_REDIS_SENTINEL_PASSWORD"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("serve --help (exit %d) lacks %q:\n%s", code, w, out)
		}
	}
}
