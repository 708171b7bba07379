package cache

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vouch-project/vouch/internal/untrusted"
)

// This file holds the authentication of the entries vouch keeps in Redis:
// whoever can write to Redis must not be able to decide which images run.
//
// An entry is sealed as
//
//	"vch1" | expiry (unix milliseconds, 8 bytes big-endian) | MAC (32 bytes) | value
//
// where MAC is HMAC-SHA256, under a key the replicas share, of
//
//	macDomain | len(redis key) (4 bytes big-endian) | redis key | expiry | value
//
// Binding the Redis key stops an entry of one image from being copied onto
// another's key; binding the expiry stops an entry from being kept past
// the TTL its writer gave it (PERSIST, EXPIRE), the expiry read back being
// the earlier of Redis' TTL and the sealed one.

// MinHMACKeyBytes is the least key material an HMAC key of a Redis cache
// may have.
const MinHMACKeyBytes = 32

// maxHMACKeyFileBytes bounds a key file read by ReadHMACKey.
const maxHMACKeyFileBytes = 4096

const (
	sealPrefix   = "vch" // then the version
	sealVersion  = '1'
	macDomain    = "vouch redis cache entry v1\x00"
	sealOverhead = len(sealPrefix) + 1 + 8 + sha256.Size
)

// Reasons an entry read from Redis is rejected, given to
// RedisOptions.OnRejected.
const (
	// RejectUnsigned: the entry has no seal (written by a vouch without a
	// key, or by someone else).
	RejectUnsigned = "unsigned"
	// RejectVersion: the entry is sealed in a format this vouch does not
	// know.
	RejectVersion = "version"
	// RejectTruncated: the entry is shorter than its seal.
	RejectTruncated = "truncated"
	// RejectMAC: the MAC does not match under either key (another key, a
	// changed value or expiry, or an entry copied from another key).
	RejectMAC = "mac"
)

// RejectReasons returns the reasons an entry read from Redis can be
// rejected for, so that metrics can show each at zero.
func RejectReasons() []string {
	return []string{RejectUnsigned, RejectVersion, RejectTruncated, RejectMAC}
}

// ReadHMACKey reads the key material of a Redis cache's HMAC key from the
// file at path (a mounted Secret, say): the file's content with leading and
// trailing white space removed, at least MinHMACKeyBytes long. Errors name
// the file, never its content.
func ReadHMACKey(path string) ([]byte, error) {
	data, err := untrusted.ReadFile(path, maxHMACKeyFileBytes)
	if err != nil {
		return nil, err
	}
	key := bytes.TrimSpace(data)
	if len(key) < MinHMACKeyBytes {
		return nil, fmt.Errorf("%s holds %d bytes of key material, want at least %d (for example: head -c 48 /dev/urandom | base64)", path, len(key), MinHMACKeyBytes)
	}
	return key, nil
}

// macKeys seal entries with current and open those sealed with current or
// previous.
type macKeys struct {
	current, previous []byte
}

func newMACKeys(current, previous []byte) (*macKeys, error) {
	if len(current) < MinHMACKeyBytes {
		return nil, fmt.Errorf("cache: RedisOptions.HMACKey has %d bytes, want at least %d", len(current), MinHMACKeyBytes)
	}
	if len(previous) != 0 && len(previous) < MinHMACKeyBytes {
		return nil, fmt.Errorf("cache: RedisOptions.HMACPreviousKey has %d bytes, want at least %d", len(previous), MinHMACKeyBytes)
	}
	k := &macKeys{current: bytes.Clone(current)}
	if len(previous) != 0 {
		k.previous = bytes.Clone(previous)
	}
	return k, nil
}

// seal returns value sealed for the Redis key rkey until expires.
func (k *macKeys) seal(rkey string, value []byte, expires time.Time) []byte {
	ms := expires.UnixMilli()
	out := make([]byte, 0, sealOverhead+len(value))
	out = append(out, sealPrefix...)
	out = append(out, sealVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(ms))
	out = sum(out, k.current, rkey, ms, value)
	return append(out, value...)
}

// open returns the value of an entry read under the Redis key rkey and its
// sealed expiry, or the reason it is rejected.
func (k *macKeys) open(rkey string, sealed []byte) (value []byte, expires time.Time, reason string) {
	const at = len(sealPrefix) + 1 // the expiry
	switch {
	case !bytes.HasPrefix(sealed, []byte(sealPrefix)):
		return nil, time.Time{}, RejectUnsigned
	case len(sealed) > len(sealPrefix) && sealed[len(sealPrefix)] != sealVersion:
		return nil, time.Time{}, RejectVersion
	case len(sealed) < sealOverhead:
		return nil, time.Time{}, RejectTruncated
	}
	ms := int64(binary.BigEndian.Uint64(sealed[at:]))
	mac := sealed[at+8 : sealOverhead]
	value = sealed[sealOverhead:]
	var buf [sha256.Size]byte
	for _, key := range [][]byte{k.current, k.previous} {
		if key != nil && hmac.Equal(mac, sum(buf[:0], key, rkey, ms, value)) {
			return value, time.UnixMilli(ms), ""
		}
	}
	return nil, time.Time{}, RejectMAC
}

// sum appends the MAC of an entry to dst.
func sum(dst, key []byte, rkey string, ms int64, value []byte) []byte {
	h := hmac.New(sha256.New, key)
	var n [8]byte
	h.Write([]byte(macDomain))
	h.Write(binary.BigEndian.AppendUint32(n[:0], uint32(len(rkey))))
	h.Write([]byte(rkey))
	h.Write(binary.BigEndian.AppendUint64(n[:0], uint64(ms)))
	h.Write(value)
	return h.Sum(dst)
}
