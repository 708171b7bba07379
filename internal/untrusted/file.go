package untrusted

import (
	"fmt"
	"io"
	"os"
)

// ReadFile reads the file at path, refusing one larger than max bytes
// without reading past max+1. Trust material, policies, schemas and config
// files named by a user are read through it, so that a wrong path (a device,
// a huge log) fails with a message instead of filling memory.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}
