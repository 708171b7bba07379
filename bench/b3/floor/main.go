// Command floor is B3's floor: the least a Go HTTPS server does to answer a
// Gatekeeper request, net/http and crypto/tls as vouch serve uses them,
// with nothing decided. It reads each request's body and answers a fixed
// ProviderResponse whose items name the keys of its first request (B3
// sends the same keys every time), padded to -size bytes (vouch's answer
// to B3 is 6,819 bytes): what is left of vouch's CPU per request beyond
// this server's is vouch's own work.
//
// It takes the arguments benchenv gives `vouch serve` (serve --listen ADDR
// --tls-cert-file F --tls-key-file F) and ignores the others.
//
// Usage: floor serve --listen ADDR --tls-cert-file CERT --tls-key-file KEY [-size N]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

func main() {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "address")
	cert := fs.String("tls-cert-file", "", "certificate")
	key := fs.String("tls-key-file", "", "key")
	size := fs.Int("size", 6819, "bytes of the answer")
	var known []string
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	// Keep the flags floor knows, skip the others (vouch serve's).
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if fs.Lookup(name) != nil && i+1 < len(args) {
			known = append(known, "-"+name, args[i+1])
			i++
		}
	}
	if err := fs.Parse(known); err != nil {
		os.Exit(2)
	}
	var (
		mu           sync.Mutex
		last, answer []byte
	)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		if !bytes.Equal(body, last) {
			last, answer = body, build(body, *size)
		}
		a := answer
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(a)))
		_, _ = w.Write(a)
	})
	srv := &http.Server{Addr: *listen}
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// build returns a ProviderResponse answering every key of the request
// body with isSuccess true, padded to size bytes.
func build(body []byte, size int) []byte {
	var req struct {
		APIVersion string `json:"apiVersion"`
		Request    struct {
			Keys []string `json:"keys"`
		} `json:"request"`
	}
	_ = json.Unmarshal(body, &req)
	type item struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
	resp := struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Response   struct {
			Idempotent bool   `json:"idempotent"`
			Items      []item `json:"items"`
			Padding    string `json:"padding,omitempty"`
		} `json:"response"`
	}{APIVersion: req.APIVersion, Kind: "ProviderResponse"}
	resp.Response.Idempotent = true
	resp.Response.Items = []item{}
	for _, k := range req.Request.Keys {
		resp.Response.Items = append(resp.Response.Items, item{Key: k, Value: map[string]bool{"isSuccess": true}})
	}
	out, _ := json.Marshal(resp)
	if pad := size - len(out) - len(`,"padding":""`) - 1; pad > 0 {
		resp.Response.Padding = strings.Repeat("x", pad)
		out, _ = json.Marshal(resp)
	}
	return append(out, '\n')
}
