package fault

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hostile wraps a real registry and, in its current mode, lies. Mode ""
// passes every request through.
type hostile struct {
	mode atomic.Value // string
	n    atomic.Int64
	// lies counts the responses the current mode changed.
	lies atomic.Int64

	mu sync.Mutex
	// foreign is the digest whose referrers the foreign-referrers mode
	// answers for every subject: a signed image's.
	foreign string
}

// Modes of the hostile registry.
const (
	throttleRetryAfter = "429 storm, Retry-After: 30"
	throttle           = "429 storm, no Retry-After"
	errorBurst         = "5xx burst (every other request 503)"
	trickle            = "blobs trickled at 1 byte/s"
	wrongDigest        = "manifest bytes not matching their digest"
	foreignReferrers   = "referrers of another subject"
	endlessPages       = "endless referrers pagination"
	redirectLoop       = "manifest redirect loop"
	oversized          = "16 MiB manifest"
	nested             = "manifest nested 100,000 deep"
)

func newHostile() *hostile {
	h := &hostile{}
	h.mode.Store("")
	return h
}

func (h *hostile) set(mode string) { h.mode.Store(mode) }

func (h *hostile) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := h.mode.Load().(string)
		path := r.URL.Path
		manifest := strings.Contains(path, "/manifests/")
		byDigest := manifest && strings.Contains(path, "/manifests/sha256:")
		referrers := strings.Contains(path, "/referrers/")
		blob := strings.Contains(path, "/blobs/sha256:") && r.Method == http.MethodGet
		if path == "/v2/" || path == "/v2" {
			next.ServeHTTP(w, r)
			return
		}
		if mode != "" {
			w = &lyingWriter{ResponseWriter: w, h: h}
		}
		switch mode {
		case throttleRetryAfter:
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case throttle:
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case errorBurst:
			if h.n.Add(1)%2 == 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		case trickle:
			if blob {
				w.Header().Set("Content-Length", "4096")
				w.WriteHeader(http.StatusOK)
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for range 4096 {
					select {
					case <-r.Context().Done():
						return
					case <-tick.C:
						if _, err := w.Write([]byte{'{'}); err != nil {
							return
						}
						w.(http.Flusher).Flush()
					}
				}
				return
			}
		case wrongDigest:
			if byDigest && r.Method == http.MethodGet {
				digest := path[strings.LastIndex(path, "/")+1:]
				body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.cncf.notary.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Docker-Content-Digest", digest)
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				_, _ = w.Write(body)
				return
			}
		case foreignReferrers:
			if referrers {
				h.mu.Lock()
				foreign := h.foreign
				h.mu.Unlock()
				r2 := r.Clone(r.Context())
				r2.URL.Path = path[:strings.LastIndex(path, "/")+1] + foreign
				next.ServeHTTP(w, r2)
				return
			}
		case endlessPages:
			if referrers {
				page := h.n.Add(1)
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				w.Header().Set("Link", fmt.Sprintf(`<%s?page=%d>; rel="next"`, path, page))
				_, _ = w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
				return
			}
		case redirectLoop:
			if manifest {
				w.Header().Set("Location", fmt.Sprintf("%s?hop=%d", path, h.n.Add(1)))
				w.WriteHeader(http.StatusTemporaryRedirect)
				return
			}
		case oversized:
			if manifest && r.Method == http.MethodGet {
				const size = 16 << 20
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Content-Length", fmt.Sprint(size))
				chunk := []byte(strings.Repeat(" ", 64<<10))
				for written := 0; written < size; written += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
				return
			}
		case nested:
			if manifest && r.Method == http.MethodGet {
				const depth = 100_000
				body := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				_, _ = w.Write([]byte(body))
				return
			}
		}
		if lie, ok := w.(*lyingWriter); ok {
			w = lie.ResponseWriter // passed through: not a lie
		}
		next.ServeHTTP(w, r)
	})
}

// lyingWriter counts a response as a lie when the hostile layer starts
// writing it. Counting at the start, not when the handler returns, matters
// for the modes that never finish (a trickled blob ends only when vouch
// gives up, which may be after the scenario's figures are read).
type lyingWriter struct {
	http.ResponseWriter
	h       *hostile
	counted bool
}

func (l *lyingWriter) count() {
	if !l.counted {
		l.counted = true
		l.h.lies.Add(1)
	}
}

func (l *lyingWriter) WriteHeader(code int) {
	l.count()
	l.ResponseWriter.WriteHeader(code)
}

func (l *lyingWriter) Write(p []byte) (int, error) {
	l.count()
	return l.ResponseWriter.Write(p)
}

func (l *lyingWriter) Flush() { l.ResponseWriter.(http.Flusher).Flush() }
