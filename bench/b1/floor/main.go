// Command floor is B1's floor: the least a Go CLI must do to verify one
// notation-signed image on a registry without the referrers API, minus the
// verification. It starts, resolves the tag, asks for the referrers API
// (404), reads the referrers tag schema's index, then fetches the first
// signature's manifest and its signature blob: the five requests vouch
// makes, over plain HTTP, checking each digest, with nothing else linked
// but the standard library. It prints nothing and exits 0 when it got
// them all.
//
// Usage: floor HOST:PORT/REPOSITORY:TAG
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json"

type descriptor struct {
	Digest string `json:"digest"`
}

type manifest struct {
	Manifests []descriptor `json:"manifests"` // an index
	Layers    []descriptor `json:"layers"`    // an image manifest
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: floor HOST:PORT/REPOSITORY:TAG")
	}
	host, rest, _ := strings.Cut(args[0], "/")
	repo, tag, _ := strings.Cut(rest, ":")
	base := "http://" + host + "/v2/" + repo
	_, subject, err := get(base+"/manifests/"+tag, "", http.StatusOK)
	if err != nil {
		return err
	}
	if _, _, err := get(base+"/referrers/"+subject, "", http.StatusNotFound); err != nil {
		return err
	}
	body, _, err := get(base+"/manifests/"+strings.Replace(subject, ":", "-", 1), "", http.StatusOK)
	if err != nil {
		return err
	}
	var index manifest
	if err := json.Unmarshal(body, &index); err != nil || len(index.Manifests) == 0 {
		return fmt.Errorf("referrers index: no manifests (%v)", err)
	}
	body, _, err = get(base+"/manifests/"+index.Manifests[0].Digest, index.Manifests[0].Digest, http.StatusOK)
	if err != nil {
		return err
	}
	var sig manifest
	if err := json.Unmarshal(body, &sig); err != nil || len(sig.Layers) == 0 {
		return fmt.Errorf("signature manifest: no layers (%v)", err)
	}
	_, _, err = get(base+"/blobs/"+sig.Layers[0].Digest, sig.Layers[0].Digest, http.StatusOK)
	return err
}

// get fetches url, checks the status and, when want is set, the digest of
// the body; it returns the body and its digest.
func get(url, want string, status int) ([]byte, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != status {
		return nil, "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sum := sha256.Sum256(body)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if want != "" && got != want {
		return nil, "", fmt.Errorf("GET %s: digest %s, want %s", url, got, want)
	}
	return body, got, nil
}
