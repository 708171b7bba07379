package registry_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2/registry/remote/auth"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// distributionWithHtpasswd starts distribution's registry process with
// htpasswd (basic) auth for one user.
func distributionWithHtpasswd(t *testing.T, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return testbed.DistributionWithHtpasswd(t, htpasswd).Host
}

// TestBasicAuth reads from distribution behind htpasswd auth, with
// credentials from Options.Credentials and from a Docker config.json.
func TestBasicAuth(t *testing.T) {
	const user, password = "alice", "s3cret-Pa55word"
	host := distributionWithHtpasswd(t, user, password)
	p := testbed.NewPusher(t, host, "private/app")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(host, auth.Credential{Username: user, Password: password})}
	subject, refs := pushSubject(t, p, 2, func(int) string { return sigType })

	dockerConfig := func(u, pw string) string {
		return writeFile(t, "config.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, base64.StdEncoding.EncodeToString([]byte(u+":"+pw))))
	}
	t.Run("DOCKER_CONFIG", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", filepath.Dir(dockerConfig(user, password)))
		s, err := registry.New(registry.Options{PlainHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open(t, s, host, "private/app").Resolve(t.Context(), "v1"); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name    string
		opts    registry.Options
		wantErr bool
	}{
		{name: "credentials", opts: registry.Options{Credentials: map[string]auth.Credential{host: {Username: user, Password: password}}}},
		{name: "docker config", opts: registry.Options{DockerConfig: dockerConfig(user, password)}},
		{name: "credentials before docker config", opts: registry.Options{
			Credentials:  map[string]auth.Credential{host: {Username: user, Password: password}},
			DockerConfig: dockerConfig(user, "wrong-"+password),
		}},
		{name: "wrong password", opts: registry.Options{Credentials: map[string]auth.Credential{host: {Username: user, Password: "wrong-" + password}}}, wantErr: true},
		{name: "wrong password in docker config", opts: registry.Options{DockerConfig: dockerConfig(user, "wrong-"+password)}, wantErr: true},
		{name: "anonymous", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.PlainHTTP = true
			s := newStore(t, tc.opts)
			repo := open(t, s, host, "private/app")
			_, data, err := repo.(vouch.FetchReferencer).FetchReference(t.Context(), "v1")
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "authentication failed for "+host) {
					t.Fatalf("err = %v, want authentication failed for %s", err, host)
				}
				for _, secret := range []string{password, base64.StdEncoding.EncodeToString([]byte(user + ":wrong-" + password))} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error discloses a secret: %v", err)
					}
				}
				return
			}
			if err != nil || testbed.Digest(data) != subject.Digest {
				t.Fatalf("FetchReference = %v; want the subject", err)
			}
			got, err := listReferrers(t, repo, subject, "")
			if err != nil || !slices.Equal(digests(got), digests(refs)) {
				t.Fatalf("referrers = %d, %v; want %d", len(got), err, len(refs))
			}
		})
	}
}

// TestDockerConfigFile checks which Docker configs New accepts: an explicit
// one must exist and parse; the default one ($DOCKER_CONFIG/config.json)
// may be missing but must parse when present.
func TestDockerConfigFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		explicit bool
		content  string // "": no file
		wantErr  bool
	}{
		{name: "explicit missing", explicit: true, wantErr: true},
		{name: "explicit malformed", explicit: true, content: "{", wantErr: true},
		{name: "explicit", explicit: true, content: `{"auths":{}}`},
		{name: "default missing"},
		{name: "default malformed", content: "{", wantErr: true},
		{name: "default", content: `{"auths":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("DOCKER_CONFIG", dir)
			var opts registry.Options
			if tc.explicit {
				opts.DockerConfig = path
			}
			_, err := registry.New(opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// tokenServer is a distribution-style token service
// (https://distribution.github.io/distribution/spec/auth/token/): it
// issues a token for the requested scopes to a client that presents the
// right basic credentials, and counts the requests per scope.
type tokenServer struct {
	user, password, service string
	url                     string

	mu       sync.Mutex
	tokens   map[string][]string // token → scopes
	requests map[string]int      // scopes → token requests
}

func newTokenServer(t *testing.T, user, password string) *tokenServer {
	ts := &tokenServer{user: user, password: password, service: "vouch-test-registry", tokens: map[string][]string{}, requests: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, _ := r.BasicAuth()
		if r.URL.Path != "/token" || r.URL.Query().Get("service") != ts.service || u != ts.user || pw != ts.password {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"bad token request"}]}`, http.StatusUnauthorized)
			return
		}
		scopes := r.URL.Query()["scope"]
		token := ts.issue(scopes...)
		ts.mu.Lock()
		ts.requests[strings.Join(scopes, " ")]++
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, token)
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	return ts
}

func (ts *tokenServer) issue(scopes ...string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	ts.mu.Lock()
	ts.tokens[token] = scopes
	ts.mu.Unlock()
	return token
}

func (ts *tokenServer) counts() map[string]int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return maps.Clone(ts.requests)
}

func (ts *tokenServer) reset() {
	ts.mu.Lock()
	ts.requests = map[string]int{}
	ts.mu.Unlock()
}

// guard puts bearer auth in front of the real ggcr handler: a request
// without a token for its repository and action gets the 401 challenge.
func (ts *tokenServer) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, scope := "", ""
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v2/"); ok && rest != "" {
			for _, sep := range []string{"/manifests/", "/blobs/", "/referrers/", "/tags/"} {
				if i := strings.Index(rest, sep); i >= 0 {
					repo = rest[:i]
					break
				}
			}
		}
		action := "pull"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			action = "push"
		}
		if repo != "" {
			scope = fmt.Sprintf("repository:%s:%s", repo, action)
		}
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		granted, known := ts.tokens[token]
		ts.mu.Unlock()
		if !known || (scope != "" && !covers(granted, repo, action)) {
			challenge := fmt.Sprintf(`Bearer realm="%s/token",service="%s"`, ts.url, ts.service)
			if scope != "" {
				challenge += fmt.Sprintf(`,scope="%s"`, scope)
			}
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// covers tells whether scopes grant action on repo ("repository:NAME:a,b").
func covers(scopes []string, repo, action string) bool {
	for _, s := range scopes {
		parts := strings.Split(s, ":")
		if len(parts) == 3 && parts[0] == "repository" && parts[1] == repo && slices.Contains(strings.Split(parts[2], ","), action) {
			return true
		}
	}
	return false
}

// TestBearerAuth reads through a token service in front of ggcr: oras-go's
// auth client exchanges the username and password for one token per scope
// and reuses it for every later request, across repositories of the Store.
func TestBearerAuth(t *testing.T) {
	const user, password = "bob", "t0ken-Pa55word"
	ts := newTokenServer(t, user, password)
	reg := testbed.GGCR(t, ts.guard)
	subjects := map[string]struct {
		subject string
		refs    int
	}{}
	for _, name := range []string{"team/a", "team/b"} {
		p := testbed.NewPusher(t, reg.Host, name)
		p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: user, Password: password}), Cache: auth.NewCache()}
		subject, refs := pushSubject(t, p, 3, func(int) string { return sigType })
		subjects[name] = struct {
			subject string
			refs    int
		}{subject.Digest.String(), len(refs)}
	}

	t.Run("username and password", func(t *testing.T) {
		ts.reset()
		s := newStore(t, registry.Options{PlainHTTP: true, Credentials: map[string]auth.Credential{reg.Host: {Username: user, Password: password}}})
		for range 2 { // a second round must be served by cached tokens
			for name, want := range subjects {
				repo := open(t, s, reg.Host, name)
				desc, err := repo.Resolve(t.Context(), "v1")
				if err != nil || desc.Digest.String() != want.subject {
					t.Fatalf("%s: Resolve = %v, %v", name, desc.Digest, err)
				}
				if _, err := repo.Fetch(t.Context(), desc); err != nil {
					t.Fatalf("%s: Fetch: %v", name, err)
				}
				got, err := listReferrers(t, repo, desc, "")
				if err != nil || len(got) != want.refs {
					t.Fatalf("%s: referrers = %d, %v", name, len(got), err)
				}
			}
		}
		want := map[string]int{"repository:team/a:pull": 1, "repository:team/b:pull": 1}
		if got := ts.counts(); !maps.Equal(got, want) {
			t.Errorf("token requests per scope = %v, want %v", got, want)
		}
	})

	t.Run("access token", func(t *testing.T) {
		ts.reset()
		token := ts.issue("repository:team/a:pull")
		s := newStore(t, registry.Options{PlainHTTP: true, Credentials: map[string]auth.Credential{reg.Host: {AccessToken: token}}})
		if _, err := open(t, s, reg.Host, "team/a").Resolve(t.Context(), "v1"); err != nil {
			t.Fatal(err)
		}
		if got := ts.counts(); len(got) != 0 {
			t.Errorf("token requests = %v, want none with an access token", got)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		s := newStore(t, registry.Options{PlainHTTP: true, Credentials: map[string]auth.Credential{reg.Host: {Username: user, Password: "wrong-" + password}}})
		_, err := open(t, s, reg.Host, "team/a").Resolve(t.Context(), "v1")
		if err == nil || !strings.Contains(err.Error(), "authentication failed for "+reg.Host) || strings.Contains(err.Error(), password) {
			t.Fatalf("err = %v, want authentication failed for %s without the password", err, reg.Host)
		}
		if errors.Is(err, vouch.ErrNotFound) {
			t.Errorf("an authentication failure must not look like a missing artifact")
		}
	})
}
