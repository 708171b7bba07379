package cache

import (
	"bytes"
	"testing"
	"time"
)

var (
	fuzzKey  = []byte("fuzz-hmac-key-0123456789abcdefghij")
	fuzzPrev = []byte("prev-hmac-key-0123456789abcdefghij")
)

// FuzzOpen feeds open entries as Redis might hold them: it never panics,
// and it accepts only what seal wrote for that Redis key.
func FuzzOpen(f *testing.F) {
	k, err := newMACKeys(fuzzKey, fuzzPrev)
	if err != nil {
		f.Fatal(err)
	}
	sealed := k.seal("vouch:verdict:x", []byte(`{"verdict":"allowed"}`), time.UnixMilli(1e12))
	f.Add("vouch:verdict:x", sealed)
	f.Add("vouch:verdict:y", sealed)
	f.Add("k", []byte("vch1"))
	f.Add("k", []byte(`{"verdict":"allowed"}`))
	f.Fuzz(func(t *testing.T, rkey string, entry []byte) {
		value, expires, reason := k.open(rkey, entry)
		if reason != "" {
			if value != nil {
				t.Fatalf("rejected (%s) with a value", reason)
			}
			return
		}
		if !bytes.Equal(k.seal(rkey, value, expires), entry) {
			t.Fatalf("accepted %q under %q, which seal did not write", entry, rkey)
		}
	})
}

// BenchmarkMAC measures sealing and opening a value the size of a typical
// cached report, without Redis.
func BenchmarkMAC(b *testing.B) {
	k, err := newMACKeys(fuzzKey, fuzzPrev)
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte(`{"verdict":"allowed"}`), 100)
	const rkey = "vouch:verdict:0123456789abcdef:registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	expires := time.Now().Add(time.Minute)
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k.seal(rkey, value, expires)
		}
	})
	sealed := k.seal(rkey, value, expires)
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, reason := k.open(rkey, sealed); reason != "" {
				b.Fatal(reason)
			}
		}
	})
}
