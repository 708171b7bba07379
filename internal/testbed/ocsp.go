package testbed

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// OCSPOptions shape an OCSP responder.
type OCSPOptions struct {
	// CACert and CAKey are PEM files of the CA and its private key; the
	// responses are signed by the CA itself. Required.
	CACert, CAKey string
	// Index is the index file in the format of `openssl ca`: one line per
	// certificate, tab-separated: V (valid) or R (revoked), expiry
	// (YYMMDDHHMMSSZ), revocation time (empty, or YYMMDDHHMMSSZ), serial
	// in upper-case hex, file name ("unknown"), subject. Required; read
	// again for each request, so it may be written after the responder
	// starts (the certificates name its URL).
	Index string
}

// OCSP is an OCSP responder on 127.0.0.1 (RFC 6960, requests by GET and
// POST as in its appendix A): each request is answered by Debian's
// `openssl ocsp` in its responder mode, which reads the request from a file
// and writes the response it signs with the CA's key (-reqin, -respout).
// `openssl ocsp -port` would serve HTTP itself, but it listens on every
// interface, and this project keeps test servers on 127.0.0.1; so only the
// HTTP framing is Go's.
type OCSP struct {
	// URL is the responder's URL, for a certificate's AIA extension.
	URL string

	srv      *httptest.Server
	requests atomic.Int64
}

// maxOCSPRequestBytes bounds a request body.
const maxOCSPRequestBytes = 64 << 10

// OCSPResponder serves o's CA's certificate statuses until the test ends,
// or Close. Responses are valid for a day (-ndays 1): notation rejects a
// response without nextUpdate as expired.
func OCSPResponder(t testing.TB, o OCSPOptions) *OCSP {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not on PATH: hack/testbed.sh installs Debian's openssl")
	}
	r := &OCSP{}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		var der []byte
		var err error
		switch req.Method {
		case http.MethodPost:
			der, err = io.ReadAll(http.MaxBytesReader(w, req.Body, maxOCSPRequestBytes))
		case http.MethodGet:
			// The path is the URL-encoded base64 of the request, which
			// net/http has decoded once ("+" stays "+"); no ServeMux
			// cleans its "//".
			der, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(req.URL.Path, "/"))
		default:
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			http.Error(w, "malformed request: "+err.Error(), http.StatusBadRequest)
			return
		}
		dir, err := os.MkdirTemp("", "ocsp")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer os.RemoveAll(dir)
		reqFile, respFile := filepath.Join(dir, "req.der"), filepath.Join(dir, "resp.der")
		if err := os.WriteFile(reqFile, der, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cmd := exec.CommandContext(req.Context(), bin, "ocsp", "-index", o.Index, "-CA", o.CACert,
			"-rsigner", o.CACert, "-rkey", o.CAKey, "-ndays", "1", "-reqin", reqFile, "-respout", respFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			http.Error(w, "openssl ocsp: "+err.Error()+": "+string(out), http.StatusInternalServerError)
			return
		}
		resp, err := os.ReadFile(respFile)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
	}))
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL
	return r
}

// Requests counts the HTTP requests the responder received.
func (r *OCSP) Requests() int64 { return r.requests.Load() }

// Close stops the responder: from then on its address refuses connections.
func (r *OCSP) Close() { r.srv.Close() }
