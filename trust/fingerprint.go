package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Bounds on what one Fingerprinter reads.
const (
	// MaxFingerprintFiles bounds the files hashed.
	MaxFingerprintFiles = 10000
	// MaxFingerprintBytes bounds the bytes of files hashed, in total.
	MaxFingerprintBytes = 256 << 20
)

// Fingerprinter hashes named values and the content of trust files into
// one SHA-256, so that what was decided under some trust material is used
// only under the same material. Files are read bounded by
// MaxFingerprintFiles and MaxFingerprintBytes. The zero value is not
// usable: call NewFingerprinter.
type Fingerprinter struct {
	h            hash.Hash
	files, bytes int64
}

// NewFingerprinter returns an empty Fingerprinter.
func NewFingerprinter() *Fingerprinter { return &Fingerprinter{h: sha256.New()} }

// Add hashes a named value; names and values cannot run into each other.
func (fp *Fingerprinter) Add(name, value string) {
	fmt.Fprintf(fp.h, "%d:%s=%d:%s;", len(name), name, len(value), value)
}

// Path hashes what is at path: a file's name and content, or the files
// below a folder (Dir). A path where nothing is hashes as missing, so that
// creating it changes the sum.
func (fp *Fingerprinter) Path(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fp.Add("missing", path)
		return nil
	case err != nil:
		return fmt.Errorf("trust material: %w", err)
	case fi.IsDir():
		return fp.Dir(path)
	}
	return fp.File(path)
}

// File hashes a file's name and content.
func (fp *Fingerprinter) File(path string) error {
	fp.files++
	if fp.files > MaxFingerprintFiles {
		return fmt.Errorf("trust material: more than %d files to fingerprint", MaxFingerprintFiles)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("trust material: %w", err)
	}
	defer f.Close()
	fp.Add("file", path)
	n, err := io.Copy(fp.h, io.LimitReader(f, MaxFingerprintBytes-fp.bytes+1))
	fp.bytes += n
	if err != nil {
		return fmt.Errorf("trust material %s: %w", path, err)
	}
	if fp.bytes > MaxFingerprintBytes {
		return fmt.Errorf("trust material: more than %d bytes to fingerprint (at %s)", MaxFingerprintBytes, path)
	}
	return nil
}

// Dir hashes the regular files below root (following symbolic links to
// files) in lexical order; a missing root hashes as empty.
func (fp *Fingerprinter) Dir(root string) error {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
				return fp.File(path)
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Sum returns the hash of everything added so far, in hex.
func (fp *Fingerprinter) Sum() string { return hex.EncodeToString(fp.h.Sum(nil)) }
