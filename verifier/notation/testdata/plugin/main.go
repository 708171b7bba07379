// Command plugin is a Notary Project verification plugin for vouch's tests,
// built on notation-plugin-framework-go: it takes over the trusted identity
// and revocation checks (SIGNATURE_VERIFIER.TRUSTED_IDENTITY and
// SIGNATURE_VERIFIER.REVOCATION_CHECK), and pluginConfig's "mode" decides
// its answer to verify-signature:
//
//	accept (default)   success for every capability asked
//	reject-identity    the trusted identity check fails
//	reject-revocation  the revocation check fails
//	no-result          answers without results
//	error              exits 1 with the contract's JSON error
//	stderr             exits 1 with a secret-looking log line on stderr
//	hang               never answers
//	hang-child         never answers, and starts a child that never ends
//	garbage            answers bytes that are not JSON
//	flood              answers more than vouch reads
//	env                fails the identity check if it sees any variable
//	                   other than PATH, naming them
//
// pluginConfig's "expect-identity", when set, must be among the trust
// policy's trustedIdentities, or the identity check fails;
// "metadata-name" and "metadata-version" change what get-plugin-metadata
// answers.
//
// The tests build it as notation lays plugins out:
// DIR/vouch-test/notation-vouch-test.
package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/notaryproject/notation-plugin-framework-go/cli"
	"github.com/notaryproject/notation-plugin-framework-go/plugin"
)

// Name and Version are what get-plugin-metadata answers.
const (
	Name    = "vouch-test"
	Version = "1.2.3"
)

type testPlugin struct{}

func (testPlugin) GetMetadata(_ context.Context, req *plugin.GetMetadataRequest) (*plugin.GetMetadataResponse, error) {
	name, version := Name, Version
	if req.PluginConfig["metadata-name"] != "" {
		name = req.PluginConfig["metadata-name"]
	}
	if req.PluginConfig["metadata-version"] != "" {
		version = req.PluginConfig["metadata-version"]
	}
	return &plugin.GetMetadataResponse{
		Name:                      name,
		Description:               "vouch's test verification plugin",
		Version:                   version,
		URL:                       "https://github.com/vouch-project/vouch",
		SupportedContractVersions: []string{plugin.ContractVersion},
		Capabilities:              []plugin.Capability{plugin.CapabilityTrustedIdentityVerifier, plugin.CapabilityRevocationCheckVerifier},
	}, nil
}

func (testPlugin) VerifySignature(_ context.Context, req *plugin.VerifySignatureRequest) (*plugin.VerifySignatureResponse, error) {
	results := map[plugin.Capability]*plugin.VerificationResult{}
	for _, c := range req.TrustPolicy.SignatureVerification {
		results[c] = &plugin.VerificationResult{Success: true}
	}
	fail := func(c plugin.Capability, reason string) {
		if r := results[c]; r != nil {
			r.Success, r.Reason = false, reason
		}
	}
	switch req.PluginConfig["mode"] {
	case "reject-identity":
		fail(plugin.CapabilityTrustedIdentityVerifier, "signing profile arn:test:profile/revoked-team is not trusted")
	case "reject-revocation":
		fail(plugin.CapabilityRevocationCheckVerifier, "signing job 1234 was revoked")
	case "no-result":
		clear(results)
	case "error":
		return nil, plugin.NewError(plugin.ErrorCodeAccessDenied, "not allowed to call the signing service")
	case "stderr":
		os.NewFile(2, "stderr").WriteString("debug: using secret token s3cr3t-t0ken\n")
		os.Exit(1)
	case "hang":
		time.Sleep(time.Hour)
	case "hang-child":
		// A child in the plugin's process group, holding its output open,
		// whose PID goes to the file pluginConfig's "pid-file" names.
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		child := exec.Command(self, sleepForever)
		child.Stdout = os.NewFile(1, "stdout")
		if err := child.Start(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(req.PluginConfig["pid-file"], []byte(strconv.Itoa(child.Process.Pid)), 0o600); err != nil {
			return nil, err
		}
		time.Sleep(time.Hour)
	case "garbage":
		os.NewFile(1, "stdout").WriteString("Hello! I am not JSON.\n")
		os.Exit(0)
	case "flood":
		out := os.NewFile(1, "stdout")
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 64 {
			if _, err := out.Write(chunk); err != nil {
				os.Exit(2)
			}
		}
		os.Exit(0)
	case "env":
		var seen []string
		for _, kv := range os.Environ() {
			if name, _, _ := strings.Cut(kv, "="); name != "PATH" {
				seen = append(seen, name)
			}
		}
		if len(seen) > 0 {
			fail(plugin.CapabilityTrustedIdentityVerifier, "saw variables "+strings.Join(seen, ","))
		}
	}
	if want := req.PluginConfig["expect-identity"]; want != "" && !slices.Contains(req.TrustPolicy.TrustedIdentities, want) {
		fail(plugin.CapabilityTrustedIdentityVerifier, "trusted identities "+strings.Join(req.TrustPolicy.TrustedIdentities, "; ")+" do not include "+want)
	}
	return &plugin.VerifySignatureResponse{
		VerificationResults: results,
		ProcessedAttributes: processed(req.Signature.UnprocessedAttributes),
	}, nil
}

func processed(attrs []string) []any {
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

func (testPlugin) DescribeKey(context.Context, *plugin.DescribeKeyRequest) (*plugin.DescribeKeyResponse, error) {
	return nil, plugin.NewUnsupportedError("describe-key")
}

func (testPlugin) GenerateSignature(context.Context, *plugin.GenerateSignatureRequest) (*plugin.GenerateSignatureResponse, error) {
	return nil, plugin.NewUnsupportedError("generate-signature")
}

func (testPlugin) GenerateEnvelope(context.Context, *plugin.GenerateEnvelopeRequest) (*plugin.GenerateEnvelopeResponse, error) {
	return nil, plugin.NewUnsupportedError("generate-envelope")
}

// sleepForever is the argument that makes the plugin sleep, as the child
// of mode hang-child.
const sleepForever = "sleep-forever"

func main() {
	if len(os.Args) == 2 && os.Args[1] == sleepForever {
		time.Sleep(time.Hour)
		return
	}
	c, err := cli.New(testPlugin{})
	if err != nil {
		os.Exit(3)
	}
	c.Execute(context.Background(), os.Args)
}
