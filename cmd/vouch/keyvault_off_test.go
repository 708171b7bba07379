//go:build !kms

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKMSNotLinked: the default build links no key-management client; a
// config naming a KMS key is refused with a message that says how to get
// one, and nothing is verified (exit 2).
func TestKMSNotLinked(t *testing.T) {
	config := filepath.Join(t.TempDir(), "vouch.yaml")
	if err := os.WriteFile(config, []byte("version: v1\nverifiers:\n  - {name: c, type: cosign, cosign: {keys: {kms: [\"awskms:///alias/release\"]}, ignoreTlogUnsafe: true}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := vouchRun(t, "verify", "--config", config, "127.0.0.1:1/app:v1")
	if code != exitUndecided || !strings.Contains(stderr, "awskms:///alias/release") || !strings.Contains(stderr, "-tags kms") {
		t.Fatalf("exit %d, want %d naming the key and -tags kms:\n%s", code, exitUndecided, stderr)
	}
}
