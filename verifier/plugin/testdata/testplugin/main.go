// Command testplugin is a vouch plugin whose behaviour the tests choose by
// its first argument: it answers well, badly, or not at all.
//
//	pass                 passes, echoing facts of the request in details
//	fail                 fails with a reason
//	sleep PIDFILE        starts a child that sleeps, writes both pids, sleeps
//	exit                 writes a passing response, 10 KiB of stderr, exits 3
//	panic                panics
//	flood PROGRESSFILE   writes 100 MiB, recording how much was written
//	garbage              writes text that is not JSON
//	version              answers as vouch.plugin/v0
//	env                  fails if it sees VOUCH_TEST_SECRET, else passes
//	sleep-child          (internal) sleeps
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type request struct {
	Version  string `json:"version"`
	Verifier struct {
		Name       string         `json:"name"`
		Parameters map[string]any `json:"parameters"`
	} `json:"verifier"`
	Subject struct {
		Reference  string     `json:"reference"`
		Descriptor descriptor `json:"descriptor"`
	} `json:"subject"`
	Artifact struct {
		Descriptor struct {
			descriptor
			ArtifactType string `json:"artifactType"`
		} `json:"descriptor"`
		Manifest struct {
			Layers []descriptor `json:"layers"`
		} `json:"manifest"`
	} `json:"artifact"`
	Blobs []struct {
		Descriptor descriptor `json:"descriptor"`
		Data       []byte     `json:"data"`
	} `json:"blobs"`
}

func respond(outcome, reason string, details map[string]any) {
	json.NewEncoder(os.Stdout).Encode(map[string]any{"version": "vouch.plugin/v1", "outcome": outcome, "reason": reason, "details": details})
}

func readRequest() request {
	var r request
	if err := json.NewDecoder(os.Stdin).Decode(&r); err != nil {
		fmt.Fprintln(os.Stderr, "bad request:", err)
		os.Exit(2)
	}
	return r
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testplugin MODE")
		os.Exit(64)
	}
	switch os.Args[1] {
	case "pass":
		r := readRequest()
		var blobs []string
		for _, b := range r.Blobs {
			sum := sha256.Sum256(b.Data)
			if "sha256:"+hex.EncodeToString(sum[:]) != b.Descriptor.Digest {
				respond("error", "blob data does not match its digest "+b.Descriptor.Digest, nil)
				return
			}
			blobs = append(blobs, string(b.Data))
		}
		respond("passed", "all good", map[string]any{
			"version":      r.Version,
			"verifier":     r.Verifier.Name,
			"parameters":   r.Verifier.Parameters,
			"reference":    r.Subject.Reference,
			"subject":      r.Subject.Descriptor.Digest,
			"artifact":     r.Artifact.Descriptor.Digest,
			"artifactType": r.Artifact.Descriptor.ArtifactType,
			"layers":       len(r.Artifact.Manifest.Layers),
			"blobs":        blobs,
			"cwd":          must(os.Getwd()),
		})
	case "fail":
		readRequest()
		respond("failed", "the artifact is not acceptable: \x1b[31mred\x1b[0m\nsecond line", map[string]any{"rule": "no-red"})
	case "sleep":
		readRequest()
		child := exec.Command(os.Args[0], "sleep-child")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pids := strconv.Itoa(os.Getpid()) + " " + strconv.Itoa(child.Process.Pid)
		if err := os.WriteFile(os.Args[2], []byte(pids), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		time.Sleep(time.Hour)
	case "sleep-child":
		time.Sleep(time.Hour)
	case "exit":
		readRequest()
		respond("passed", "but the exit status says otherwise", nil)
		fmt.Fprint(os.Stderr, "boom: the license database is unreachable\n"+strings.Repeat("x", 10<<10))
		os.Exit(3)
	case "panic":
		readRequest()
		var m map[string]int
		m["crash"]++
	case "flood":
		// Does not read the request: vouch must cope with that too.
		chunk := []byte(strings.Repeat("A", 64<<10))
		written := 0
		for written < 100<<20 {
			n, err := os.Stdout.Write(chunk)
			written += n
			// Replaced whole, so that a kill never leaves it half written.
			os.WriteFile(os.Args[2]+".tmp", []byte(strconv.Itoa(written)), 0o600)
			os.Rename(os.Args[2]+".tmp", os.Args[2])
			if err != nil {
				os.Exit(1)
			}
		}
	case "garbage":
		readRequest()
		fmt.Println("Hello! I am not a JSON response.")
	case "version":
		readRequest()
		json.NewEncoder(os.Stdout).Encode(map[string]any{"version": "vouch.plugin/v0", "outcome": "passed", "reason": "old"})
	case "env":
		readRequest()
		var names []string
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			names = append(names, name)
		}
		sort.Strings(names)
		if v, ok := os.LookupEnv("VOUCH_TEST_SECRET"); ok {
			respond("failed", "saw VOUCH_TEST_SECRET="+v, nil)
			return
		}
		respond("passed", "no secret in sight", map[string]any{"env": names, "allowed": os.Getenv("VOUCH_TEST_ALLOWED")})
	default:
		io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(64)
	}
}

func must(s string, err error) string {
	if err != nil {
		return err.Error()
	}
	return s
}
