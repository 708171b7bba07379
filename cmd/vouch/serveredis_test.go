package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
)

// TestServeRedisKeys checks the flags that authenticate the Redis cache:
// --redis-addr without a key file is a usage error that says why; a key
// file too short is refused without showing its content; with a key, what
// vouch serve writes to Redis is sealed, and the key is never logged.
func TestServeRedisKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const key = "serve-test-hmac-key-0123456789abcdefghij"
	keyFile := write("key", key+"\n")
	shortFile := write("short", "short-secret-key\n")
	base := []string{"serve", "--tls-cert-file", "x", "--tls-key-file", "y"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no key", []string{"--redis-addr", "127.0.0.1:1"}, []string{"--redis-addr needs --redis-hmac-key-file", "any image allowed", "--redis-insecure-unauthenticated"}},
		{"key and insecure", []string{"--redis-addr", "127.0.0.1:1", "--redis-hmac-key-file", keyFile, "--redis-insecure-unauthenticated"}, []string{"exclude each other"}},
		{"previous key alone", []string{"--redis-addr", "127.0.0.1:1", "--redis-hmac-previous-key-file", keyFile, "--redis-insecure-unauthenticated"}, []string{"needs --redis-hmac-key-file"}},
		{"key without redis", []string{"--redis-hmac-key-file", keyFile}, []string{"need --redis-addr"}},
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

	reg := testbed.GGCR(t, nil)
	signer := testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "serve/redis")
	signer.Sign(p, p.Image("signed", "signed"))
	tlsDir := t.TempDir()
	if code, out, stderr := vouchRun(t, "serve", "--generate-tls", tlsDir); code != 0 {
		t.Fatalf("--generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	redisSrv := redistest.Start(t)
	serveArgs := []string{"serve", "--tls-cert-file", filepath.Join(tlsDir, "tls.crt"), "--tls-key-file", filepath.Join(tlsDir, "tls.key"),
		"--notation-cert", signer.CAFile, "--plain-http", "--allow-internal-registry", "127.0.0.1", "--redis-addr", redisSrv.Addr}

	t.Run("short key", func(t *testing.T) {
		code, _, stderr := vouchRun(t, append(serveArgs, "--redis-hmac-key-file", keyFile, "--redis-hmac-previous-key-file", shortFile)...)
		if code != exitUndecided || !strings.Contains(stderr, "--redis-hmac-previous-key-file: "+shortFile+" holds 16 bytes") || strings.Contains(stderr, "short-secret") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})

	t.Run("sealed", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
		metricsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		logs := &lockedBuffer{}
		exit := make(chan int, 1)
		go func() {
			exit <- run(ctx, append(serveArgs, "--listen", addr, "--metrics-listen", metricsAddr, "--redis-hmac-key-file", keyFile, "--log-level", "debug"),
				strings.NewReader(""), &bytes.Buffer{}, logs)
		}()
		get := func(url string) (int, string) {
			resp, err := http.Get(url)
			if err != nil {
				return 0, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		deadline := time.Now().Add(10 * time.Second)
		for code, _ := get("http://" + metricsAddr + "/readyz"); code != http.StatusOK; code, _ = get("http://" + metricsAddr + "/readyz") {
			if time.Now().After(deadline) {
				t.Fatalf("vouch serve did not become ready:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		pool := x509.NewCertPool()
		caPEM, _ := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
		pool.AppendCertsFromPEM(caPEM)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		body := fmt.Sprintf(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["%s/serve/redis:signed"]}}`, reg.Host)
		resp, err := client.Post("https://"+addr+"/gatekeeper/v1/verify", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(answer), `"isSuccess":true`) {
			t.Fatalf("answer %s\n%s", answer, logs.String())
		}

		raw := redis.NewClient(&redis.Options{Addr: redisSrv.Addr, Protocol: 2, DisableIdentity: true})
		defer raw.Close()
		keys, err := raw.Keys(ctx, "vouch:*").Result()
		if err != nil || len(keys) != 2 { // the tag and the verdict
			t.Fatalf("Redis keys %v, %v", keys, err)
		}
		for _, k := range keys {
			v, err := raw.Get(ctx, k).Bytes()
			if err != nil || !bytes.HasPrefix(v, []byte("vch1")) {
				t.Fatalf("%s = %q, %v: not sealed", k, v, err)
			}
		}
		if _, m := get("http://" + metricsAddr + "/metrics"); !strings.Contains(m, `vouch_cache_rejected_entries_total{reason="mac"} 0`) {
			t.Fatalf("metrics lack vouch_cache_rejected_entries_total:\n%s", m)
		}
		cancel()
		if code := <-exit; code != 0 {
			t.Fatalf("exit %d\n%s", code, logs.String())
		}
		if strings.Contains(logs.String(), key) {
			t.Fatalf("the key is in the logs:\n%s", logs.String())
		}
	})
}
