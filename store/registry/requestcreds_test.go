package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// TestRequestCredentials reads from distribution behind htpasswd with
// credentials that travel with each request (WithCredentials): a request
// with the right ones reads; one without credentials, or with wrong ones,
// is refused afterwards too, by tag and by digest, although the Store
// holds the token, the tag's resolution and the content that the first
// fetched.
func TestRequestCredentials(t *testing.T) {
	const user, password = "alice", "s3cret-Pa55word"
	host := distributionWithHtpasswd(t, user, password)
	p := testbed.NewPusher(t, host, "private/app")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(host, auth.Credential{Username: user, Password: password})}
	subject, _ := pushSubject(t, p, 1, func(int) string { return sigType })

	good := registry.NewRequestCredentials(map[string]auth.Credential{host: {Username: user, Password: password}})
	wrong := registry.NewRequestCredentials(map[string]auth.Credential{host: {Username: user, Password: "wrong-" + password}})
	other := registry.NewRequestCredentials(map[string]auth.Credential{"other.example": {Username: user, Password: password}})
	if good.ID() == wrong.ID() || good.ID() == "" || strings.Contains(good.ID(), password) {
		t.Fatalf("IDs %q %q", good.ID(), wrong.ID())
	}
	withA := registry.WithCredentials(t.Context(), good)
	s := newStore(t, registry.Options{PlainHTTP: true, TagTTL: time.Minute})
	repo := open(t, s, host, "private/app")

	if got := registry.Scope(withA, host); got != good.ID() {
		t.Errorf("Scope = %q, want the credentials' ID", got)
	}
	if got := registry.Scope(registry.WithCredentials(t.Context(), other), host); got != "" {
		t.Errorf("Scope of credentials for another host = %q, want the Store's own", got)
	}
	desc, _, err := repo.(vouch.FetchReferencer).FetchReference(withA, "v1")
	if err != nil || desc.Digest != subject.Digest {
		t.Fatalf("with the request's credentials: %v", err)
	}
	for _, ref := range []string{"v1", subject.Digest.String()} {
		if _, err := repo.Resolve(withA, ref); err != nil {
			t.Fatalf("Resolve %s with the request's credentials: %v", ref, err)
		}
	}
	for name, ctx := range map[string]context.Context{
		"no credentials":                  t.Context(),
		"wrong credentials":               registry.WithCredentials(t.Context(), wrong),
		"credentials for another host":    registry.WithCredentials(t.Context(), other),
		"nil credentials":                 registry.WithCredentials(t.Context(), nil),
		"wrong credentials, A's deadline": registry.WithCredentials(withA, wrong),
	} {
		for _, ref := range []string{"v1", subject.Digest.String()} {
			_, err := repo.Resolve(ctx, ref)
			if err == nil || !strings.Contains(err.Error(), "authentication failed for "+host) {
				t.Errorf("%s: Resolve %s = %v, want authentication failed", name, ref, err)
			}
		}
	}
	// The Store's own credentials serve requests without any.
	own := newStore(t, registry.Options{PlainHTTP: true, Credentials: map[string]auth.Credential{host: {Username: user, Password: password}}})
	if _, err := open(t, own, host, "private/app").Resolve(t.Context(), subject.Digest.String()); err != nil {
		t.Errorf("with the Store's own credentials: %v", err)
	}
	// A request's credentials come first: wrong ones fail even there.
	if _, err := open(t, own, host, "private/app").Resolve(registry.WithCredentials(t.Context(), wrong), "v1"); err == nil {
		t.Error("a request's wrong credentials were passed over for the Store's")
	}
}
