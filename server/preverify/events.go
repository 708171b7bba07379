package preverify

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
)

// Bounds on what the events endpoints read.
const (
	// DefaultMaxEventBytes bounds one request's body.
	DefaultMaxEventBytes = 1 << 20
	// MaxEvents bounds the events (or subjects) of one request; the
	// distribution registry sends one per request.
	MaxEvents = 1000
	// MinTokenBytes is the shortest bearer token accepted.
	MinTokenBytes = 16
)

// RegistryEventsMediaType is the media type of the distribution
// registry's notification envelopes.
const RegistryEventsMediaType = "application/vnd.docker.distribution.events.v2+json"

// Envelope is the distribution registry's notification body
// (notifications.endpoints; distribution's notifications.Envelope), reduced
// to the fields vouch reads.
type Envelope struct {
	Events []Event `json:"events"`
}

// Event is one registry event.
type Event struct {
	// Action is "push", "pull", "mount" or "delete".
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		// Host is the registry's host as the pushing client named it
		// (its Host header): the host images are pulled by.
		Host string `json:"host"`
	} `json:"request"`
}

// referrersTag matches the tags that name the subject a referrer is
// attached to: the OCI referrers tag schema (sha256-<hex>, the index of
// an image's referrers on a registry without the referrers API, which
// notation, oras and cosign v3 update on each attach) and cosign's
// legacy sha256-<hex>.sig, .att and .sbom.
var referrersTag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(sha256)-([a-f0-9]{64})(\.sig|\.att|\.sbom)?$`) })

// ErrBadEvent is matched (errors.Is) by the errors about a request that
// cannot be read as events.
var ErrBadEvent = errors.New("bad event")

// ParseEnvelope reads a registry notification envelope from data and
// returns the jobs to verify images again: for the push of a tag that
// names a subject (a referrers tag: a signature, an SBOM or an
// attestation was attached), the subject by digest; for the push of any
// other tag, the tag (it may have moved). Each job awaits its tag at the
// pushed digest: the registry may notify before it moves the tag. Other
// events (pulls, deletes, blob pushes, pushes by digest alone) name nothing
// to verify and are counted in ignored. Images are returned once each, in
// the order of their events.
func ParseEnvelope(data []byte) (jobs []Job, ignored int, err error) {
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, 0, fmt.Errorf("%w: not a registry notification envelope: %v", ErrBadEvent, err)
	}
	if len(env.Events) > MaxEvents {
		return nil, 0, fmt.Errorf("%w: %d events, more than %d", ErrBadEvent, len(env.Events), MaxEvents)
	}
	seen := map[string]bool{}
	for _, ev := range env.Events {
		j, ok := eventJob(ev)
		if !ok {
			ignored++
			continue
		}
		if !seen[j.Image] {
			seen[j.Image] = true
			jobs = append(jobs, j)
		}
	}
	return jobs, ignored, nil
}

// eventJob returns the job an event asks for.
func eventJob(ev Event) (Job, bool) {
	t := ev.Target
	if ev.Action != "push" || t.Tag == "" || t.Repository == "" || ev.Request.Host == "" {
		return Job{}, false
	}
	name := ev.Request.Host + "/" + t.Repository
	image := name + ":" + t.Tag
	tagged, err := vouch.ParseReference(image)
	if err != nil || strings.HasPrefix(image, vouch.LayoutPrefix) || tagged.Digest != "" {
		return Job{}, false
	}
	j := Job{Image: tagged.String(), Registry: tagged.Registry, Source: "registry"}
	if m := referrersTag().FindStringSubmatch(t.Tag); m != nil {
		ref, err := vouch.ParseReference(name + "@" + m[1] + ":" + m[2])
		if err != nil {
			return Job{}, false
		}
		j.Image = ref.String()
	}
	if d, err := digest.Parse(t.Digest); err == nil {
		j.Await, j.AwaitDigest = tagged.String(), d.String()
	}
	return j, true
}

// Subjects is the body CI posts after signing or attaching: the images to
// verify again, by tag or digest.
type Subjects struct {
	// Subject is one image. Optional.
	Subject string `json:"subject,omitempty"`
	// Subjects are more images. Optional.
	Subjects []string `json:"subjects,omitempty"`
	// Namespace is the Kubernetes namespace whose policy applies.
	// Optional; default the policy of requests that name none.
	Namespace string `json:"namespace,omitempty"`
}

// ParseSubjects reads a Subjects body and returns its images, each checked
// to be a registry reference.
func ParseSubjects(data []byte) (*Subjects, []string, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var s Subjects
	if err := dec.Decode(&s); err != nil {
		return nil, nil, fmt.Errorf(`%w: want {"subject":"REGISTRY/REPOSITORY[:TAG|@DIGEST]"} or {"subjects":[...]}: %v`, ErrBadEvent, err)
	}
	all := s.Subjects
	if s.Subject != "" {
		all = append([]string{s.Subject}, all...)
	}
	switch {
	case len(all) == 0:
		return nil, nil, fmt.Errorf(`%w: no "subject" or "subjects"`, ErrBadEvent)
	case len(all) > MaxEvents:
		return nil, nil, fmt.Errorf("%w: %d subjects, more than %d", ErrBadEvent, len(all), MaxEvents)
	}
	images := make([]string, 0, len(all))
	for _, image := range all {
		if strings.HasPrefix(image, vouch.LayoutPrefix) {
			return nil, nil, fmt.Errorf("%w: subject %q: OCI layout references are not served", ErrBadEvent, image)
		}
		ref, err := vouch.ParseReference(image)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: subject %q: %v", ErrBadEvent, image, err)
		}
		images = append(images, ref.String())
	}
	return &s, images, nil
}

// ReadToken reads a bearer token from path: the file's content, white
// space trimmed, at least MinTokenBytes long.
func ReadToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", err
	}
	if len(data) > 4096 {
		return "", fmt.Errorf("%s: a token file holds at most 4096 bytes", path)
	}
	token := strings.TrimSpace(string(data))
	if len(token) < MinTokenBytes {
		return "", fmt.Errorf("%s: the token is %d bytes long; at least %d are needed (say, from 'head -c 32 /dev/urandom | base64')", path, len(token), MinTokenBytes)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("%s: the token holds white space; an HTTP header cannot carry it", path)
	}
	return token, nil
}

// HandlerOptions configure the events endpoints.
type HandlerOptions struct {
	// Queue receives the images to verify. Required.
	Queue *Queue
	// Token is the bearer token callers must present. Required.
	Token string
	// MaxBodyBytes bounds a request body. Optional; default
	// DefaultMaxEventBytes.
	MaxBodyBytes int64
	// OnEvent is called for each event or subject read, by source
	// ("registry", "subjects") and result ("ignored", "invalid"); queued
	// ones are counted by the Queue's OnEnqueue. Optional.
	OnEvent func(source, result string)
	// Logger logs refused requests. Optional; default slog.Default().
	Logger *slog.Logger
}

// Handler serves the events endpoints:
//
//	POST /events/v1/registry   the distribution registry's notifications
//	POST /events/v1/subjects   {"subject": "..."} or {"subjects": [...]}
//
// Both need "Authorization: Bearer TOKEN" and answer 202 Accepted with
// what was done: {"queued":N,"duplicate":N,"dropped":N,"ignored":N}, or 429
// Too Many Requests from /subjects when the queue was full for every
// subject.
type Handler struct {
	opts  HandlerOptions
	token [32]byte
	mux   *http.ServeMux
}

// NewHandler returns the Handler for opts.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	if opts.Queue == nil {
		return nil, errors.New("preverify: HandlerOptions.Queue is required")
	}
	if len(opts.Token) < MinTokenBytes {
		return nil, fmt.Errorf("preverify: HandlerOptions.Token must hold at least %d bytes", MinTokenBytes)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxEventBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{opts: opts, token: sha256.Sum256([]byte(opts.Token)), mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /events/v1/registry", h.registry)
	h.mux.HandleFunc("POST /events/v1/subjects", h.subjects)
	return h, nil
}

// ServeHTTP serves the endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vouch events"`)
		http.Error(w, "a bearer token is required (Authorization: Bearer TOKEN, the token of --events-token-file)", http.StatusUnauthorized)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized compares the request's bearer token with the configured one
// in constant time (over their hashes, so that the length leaks nothing).
func (h *Handler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1
}

// counts is an events endpoint's answer.
type counts struct {
	Queued    int `json:"queued"`
	Duplicate int `json:"duplicate"`
	Dropped   int `json:"dropped"`
	Ignored   int `json:"ignored"`
}

func (c *counts) add(result string) {
	switch result {
	case Queued:
		c.Queued++
	case Duplicate:
		c.Duplicate++
	case Dropped:
		c.Dropped++
	}
}

func (h *Handler) read(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		}
		return nil, false
	}
	return data, true
}

func (h *Handler) event(source, result string) {
	if h.opts.OnEvent != nil {
		h.opts.OnEvent(source, result)
	}
}

func (h *Handler) registry(w http.ResponseWriter, r *http.Request) {
	data, ok := h.read(w, r)
	if !ok {
		return
	}
	jobs, ignored, err := ParseEnvelope(data)
	if err != nil {
		h.event("registry", "invalid")
		h.opts.Logger.Warn("refused a registry notification", "error", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := counts{Ignored: ignored}
	for range ignored {
		h.event("registry", "ignored")
	}
	for _, j := range jobs {
		c.add(h.opts.Queue.Enqueue(j))
	}
	// Always 2xx: the registry retries what is refused, and a full queue
	// is better answered by the next event than by a retry storm.
	writeJSON(w, http.StatusAccepted, c)
}

func (h *Handler) subjects(w http.ResponseWriter, r *http.Request) {
	data, ok := h.read(w, r)
	if !ok {
		return
	}
	s, images, err := ParseSubjects(data)
	if err != nil {
		h.event("subjects", "invalid")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var c counts
	for _, image := range images {
		c.add(h.opts.Queue.Enqueue(Job{Namespace: s.Namespace, Image: image, Source: "subjects"}))
	}
	status := http.StatusAccepted
	if c.Dropped == len(images) {
		w.Header().Set("Retry-After", "1")
		status = http.StatusTooManyRequests
	}
	writeJSON(w, status, c)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
