package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
)

// A denial explains itself: a real registry, a real Notary Project
// signature by a certificate that no trust store holds, and the reason
// names the requirement, the signer, the trust store and the trust policy,
// in the text output and in the JSON report's explanations, and vouch
// serve answers Gatekeeper and the admission webhook with the same.
func TestExplainedDenials(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	trusted := testbed.NewNotationSigner(t)
	rogue, err := testbed.NewNotary(testbed.NotaryOptions{Organization: "rogue", SignerName: "untrusted"})
	if err != nil {
		t.Fatal(err)
	}
	p := testbed.NewPusher(t, reg.Host, "explain/app")
	rogueImage := p.Image("rogue", "rogue")
	if err := rogue.Sign(context.Background(), p.Repo, rogueImage); err != nil {
		t.Fatal(err)
	}
	p.Image("unsigned", "unsigned")
	sbomOnly := p.Image("sbom-only", "sbom-only")
	p.Attach(sbomOnly, "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","dataLicense":"CC0-1.0","documentNamespace":"https://example.com/x","packages":[]}`))

	dir := t.TempDir()
	tp := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(tp, []byte(`{"version":"1.0","trustPolicies":[{"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vouch.yaml")
	if err := os.WriteFile(cfg, []byte(`version: v1
trustStores:
  - {name: "ca:acme", files: [`+trusted.CAFile+`]}
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: `+tp+`}}
registries:
  plainHTTP: true
policy:
  scopes:
    - name: prod
      repositories: ["*"]
      require: [{kind: signature}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	untrusted := `untrusted signer: the certificate chain of "CN=untrusted,O=rogue,ST=WA,C=US"`
	named := `trust stores ca:acme, named by trust policy statement "prod"`
	wanted := "wanted: a signature of the subject that verifies"
	tests := []struct {
		tag         string
		text        []string // in the text output
		requirement string
		found       []vouch.Finding // digests left out
	}{
		{"rogue", []string{`scope "prod": no signature verified (1 found, none verifies): sha256:`, untrusted, named, wanted}, "signature",
			[]vouch.Finding{{ArtifactType: "application/vnd.cncf.notary.signature", Outcome: vouch.Failed, Signer: "CN=untrusted,O=rogue,ST=WA,C=US"}}},
		{"unsigned", []string{`scope "prod": no signature found`, wanted}, "signature", nil},
		{"sbom-only", []string{`scope "prod": no signature found; found instead 1 referrer: application/spdx+json sha256:`, "(not a signature: not checked: no verifier handles artifact type application/spdx+json)", wanted}, "signature",
			[]vouch.Finding{{ArtifactType: "application/spdx+json", Outcome: vouch.Skipped}}},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			ref := reg.Host + "/explain/app:" + tt.tag
			code, out, stderr := vouchRun(t, "verify", "--config", cfg, ref)
			if code != exitDenied {
				t.Fatalf("exit %d\n%s%s", code, out, stderr)
			}
			for _, want := range tt.text {
				if !strings.Contains(out, want) {
					t.Errorf("the text output does not say %q:\n%s", want, out)
				}
			}
			code, out, stderr = vouchRun(t, "verify", "--config", cfg, "-o", "json", ref)
			var doc vouch.Reports
			if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitDenied {
				t.Fatalf("exit %d: %v\n%s%s", code, err, out, stderr)
			}
			r := doc.Subjects[0]
			if len(r.Explanations) != 1 {
				t.Fatalf("explanations: %+v", r.Explanations)
			}
			e := r.Explanations[0]
			if e.Requirement != tt.requirement || e.Scope != "prod" || e.Node != r.Root.Digest || e.NodeType != ocispec.MediaTypeImageManifest ||
				!strings.Contains(r.Reason, e.Reason) || !strings.HasPrefix("wanted: "+e.Wanted, wanted) || len(e.Found) != len(tt.found) {
				t.Fatalf("explanation %+v\nfor reason %q", e, r.Reason)
			}
			for i, f := range e.Found {
				want := tt.found[i]
				if f.Digest != r.Root.Referrers[i].Digest || f.ArtifactType != want.ArtifactType || f.Outcome != want.Outcome || f.Signer != want.Signer || f.Reason == "" {
					t.Fatalf("found[%d] = %+v, want %+v", i, f, want)
				}
			}
		})
	}

	// vouch serve gives Gatekeeper and the admission webhook the same
	// explanation.
	addr, client := serveExplained(t, cfg)
	body := fmt.Sprintf(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["%s/explain/app:rogue"]}}`, reg.Host)
	resp, err := client.Post("https://"+addr+"/gatekeeper/v1/verify", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Response struct {
			Items []struct {
				Value struct {
					IsSuccess    bool                `json:"isSuccess"`
					Reason       string              `json:"reason"`
					Explanations []vouch.Explanation `json:"explanations"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || len(answer.Response.Items) != 1 {
		t.Fatalf("answer %+v, %v", answer, err)
	}
	v := answer.Response.Items[0].Value
	if v.IsSuccess || !strings.Contains(v.Reason, untrusted) || !strings.Contains(v.Reason, named) ||
		len(v.Explanations) != 1 || len(v.Explanations[0].Found) != 1 || v.Explanations[0].Found[0].Signer != "CN=untrusted,O=rogue,ST=WA,C=US" {
		t.Fatalf("Gatekeeper value: %+v", v)
	}

	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": map[string]any{"containers": []map[string]any{{"name": "app", "image": reg.Host + "/explain/app:rogue"}}}})
	review, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "1", "kind": map[string]string{"version": "v1", "kind": "Pod"}, "namespace": "default", "name": "demo", "operation": "CREATE", "object": json.RawMessage(pod)}})
	resp, err = client.Post("https://"+addr+"/admission/v1/validate", "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	var reviewed struct {
		Response struct {
			Allowed bool `json:"allowed"`
			Status  struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	err = json.NewDecoder(resp.Body).Decode(&reviewed)
	resp.Body.Close()
	msg := reviewed.Response.Status.Message
	if err != nil || reviewed.Response.Allowed || !strings.Contains(msg, `container "app" image `+reg.Host+"/explain/app:rogue") || !strings.Contains(msg, untrusted) || !strings.Contains(msg, named) {
		t.Fatalf("admission: %+v, %v", reviewed, err)
	}
	t.Logf("admission message: %s", msg)
}

// serveExplained starts `vouch serve --config cfg` for the test and returns
// its address and a client that trusts its certificate.
func serveExplained(t *testing.T, cfg string) (string, *http.Client) {
	t.Helper()
	dir := t.TempDir()
	if code, out, stderr := vouchRun(t, "serve", "--generate-tls", dir, "--tls-dns-name", "127.0.0.1"); code != 0 {
		t.Fatalf("--generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--config", cfg, "--listen", addr, "--metrics-listen", metricsAddr,
			"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"),
			"--allow-internal-registry", "127.0.0.1", "--linger", "0"}, strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(20 * time.Second):
			t.Error("vouch serve did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vouch serve did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("ca.crt: %v", err)
	}
	return addr, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
