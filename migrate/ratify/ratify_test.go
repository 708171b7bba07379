package ratify

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The fixtures in testdata are written from Ratify's own sample resources
// (github.com/ratify-project/ratify, branch v1); each file names, in its
// comments, the samples its documents come from:
//
//   - notation.yaml: config/samples/clustered/kmp/config_v1beta1_keymanagementprovider_inline.yaml,
//     config/samples/clustered/verifier/config_v1beta1_verifier_notation.yaml,
//     config/samples/clustered/store/config_v1beta1_store_oras_http.yaml,
//     config/samples/clustered/policy/config_v1beta1_policy_json.yaml
//     (the provider named as charts/ratify/templates/inline-key-management-provider.yaml names it)
//   - cosign.yaml: charts/ratify/templates/inline-key-management-provider.yaml,
//     config/samples/clustered/verifier/config_v1beta1_verifier_cosign.yaml,
//     config/samples/clustered/store/config_v1beta1_store_oras_k8secretAuth.yaml
//   - keyless.yaml: charts/ratify/templates/verifier.yaml (cosign.keyless values)
//   - supplychain.yaml: config_v1beta1_verifier_notation.yaml, config_v1beta1_keymanagementprovider_inline.yaml,
//     config_v1beta1_verifier_sbom_deny.yaml, config_v1beta1_verifier_vulnerabilityreport.yaml,
//     config_v1beta1_verifier_schemavalidator.yaml, config_v1beta1_policy_json.yaml (config/samples/clustered/)
//   - namespaced.yaml: config/samples/namespaced/{kmp,verifier,policy,store}/ (inline KMP,
//     notation verifier, JSON policy, oras store over HTTP)
//   - unconvertible.yaml: config/samples/clustered/kmp/config_v1beta1_keymanagementprovider_akv.yaml,
//     verifier/config_v1beta1_verifier_notation_kmprovider.yaml, policy/config_v1beta1_policy_rego.yaml,
//     verifier/config_v1beta1_verifier_partial_licensechecker.yaml, verifier/config_v1beta1_verifier_dynamic.yaml,
//     verifier/config_v1beta1_verifier_cosign_legacy.yaml, verifier/config_v1beta1_verifier_cosign_keyless_legacy.yaml,
//     store/config_v1beta1_store_dynamic.yaml
//
// Each converts to testdata/NAME.golden: the manifest, the ConfigMaps and
// the report.
func TestGolden(t *testing.T) {
	complete := map[string]bool{"notation": true, "cosign": true, "keyless": true, "supplychain": true, "namespaced": false, "unconvertible": false}
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) != len(complete) {
		t.Fatalf("testdata has %d fixtures, the test knows %d", len(files), len(complete))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert([]Input{{Name: filepath.Base(f), Data: data}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Complete(); got != complete[name] {
				t.Errorf("Complete() = %v, want %v", got, complete[name])
			}
			if len(res.Manifest) > 0 {
				if _, err := config.ParseResources(res.Manifest); err != nil {
					t.Errorf("the manifest does not pass config.ParseResources: %v", err)
				}
			}
			var got bytes.Buffer
			got.WriteString("# manifest\n")
			got.Write(res.Manifest)
			got.WriteString("# configmaps\n")
			got.Write(res.ConfigMaps)
			got.WriteString("# report\n")
			for _, e := range res.Report {
				got.WriteString(e.String() + "\n")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("output differs from %s (run with -update to rewrite it):\n%s", golden, got.String())
			}
		})
	}
}

const (
	v1beta1 = "apiVersion: config.ratify.deislabs.io/v1beta1\n"
	// cert is the certificate of Ratify's inline KMP sample.
	inlineCertKMP = v1beta1 + `kind: KeyManagementProvider
metadata: {name: certs}
spec:
  type: inline
  parameters:
    contentType: certificate
    value: |
      -----BEGIN CERTIFICATE-----
      MIIDQzCCAiugAwIBAgIUDxHQ9JxxmnrLWTA5rAtIZCzY8mMwDQYJKoZIhvcNAQEL
      BQAwKTEPMA0GA1UECgwGUmF0aWZ5MRYwFAYDVQQDDA1SYXRpZnkgU2FtcGxlMB4X
      DTIzMDYyOTA1MjgzMloXDTMzMDYyNjA1MjgzMlowKTEPMA0GA1UECgwGUmF0aWZ5
      MRYwFAYDVQQDDA1SYXRpZnkgU2FtcGxlMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A
      MIIBCgKCAQEAshmsL2VM9ojhgTVUUuEsZro9jfI27VKZJ4naWSHJihmOki7IoZS8
      3/3ATpkE1lGbduJ77M9UxQbEW1PnESB0bWtMQtjIbser3mFCn15yz4nBXiTIu/K4
      FYv6HVdc6/cds3jgfEFNw/8RVMBUGNUiSEWa1lV1zDM2v/8GekUr6SNvMyqtY8oo
      ItwxfUvlhgMNlLgd96mVnnPVLmPkCmXFN9iBMhSce6sn6P9oDIB+pr1ZpE4F5bwa
      gRBg2tWN3Tz9H/z2a51Xbn7hCT5OLBRlkorHJl2HKKRoXz1hBgR8xOL+zRySH9Qo
      3yx6WvluYDNfVbCREzKJf9fFiQeVe0EJOwIDAQABo2MwYTAdBgNVHQ4EFgQUKzci
      EKCDwPBn4I1YZ+sDdnxEir4wHwYDVR0jBBgwFoAUKzciEKCDwPBn4I1YZ+sDdnxE
      ir4wDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQwDQYJKoZIhvcNAQEL
      BQADggEBAGh6duwc1MvV+PUYvIkDfgj158KtYX+bv4PmcV/aemQUoArqM1ECYFjt
      BlBVmTRJA0lijU5I0oZje80zW7P8M8pra0BM6x3cPnh/oZGrsuMizd4h5b5TnwuJ
      hRvKFFUVeHn9kORbyQwRQ5SpL8cRGyYp+T6ncEmo0jdIOM5dgfdhwHgb+i3TejcF
      90sUs65zovUjv1wa11SqOdu12cCj/MYp+H8j2lpaLL2t0cbFJlBY6DNJgxr5qync
      cz8gbXrZmNbzC7W5QK5J7fcx6tlffOpt5cm427f9NiK2tira50HU7gC3HJkbiSTp
      Xw10iXXMZzSbQ0/Hj2BF4B40WfAkgRg=
      -----END CERTIFICATE-----
`
	notationVerifier = v1beta1 + `kind: Verifier
metadata: {name: notation}
spec:
  name: notation
  artifactTypes: application/vnd.cncf.notary.signature
  parameters:
    verificationCertStores: {ca: {ca-certs: [%s]}}
    trustPolicyDoc:
      version: "1.0"
      trustPolicies:
        - name: default
          registryScopes: ["*"]
          signatureVerification: {level: strict}
          trustStores: [ca:ca-certs]
          trustedIdentities: ["*"]
`
	cosignVerifier = v1beta1 + `kind: Verifier
metadata: {name: cosign}
spec:
  name: cosign
  artifactTypes: application/vnd.dev.cosign.artifact.sig.v1+json
  parameters:
`
)

// TestOutcomes converts one resource (with what it needs) per case and
// checks the outcome of the last one, and a phrase of its notes.
func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        Outcome
		note        string
	}{
		{"notation with an inline certificate", inlineCertKMP + "---\n" + strings.Replace(notationVerifier, "%s", "certs", 1), Converted, ""},
		{"notation with a missing provider", strings.Replace(notationVerifier, "%s", "nowhere", 1), NotConverted, "nowhere: no KeyManagementProvider of that name"},
		{"notation with a trust store missing from verificationCertStores", strings.Replace(strings.Replace(notationVerifier, "%s", "certs", 1), "ca-certs: [certs]", "other: [certs]", 1), NotConverted, "has no providers in verificationCertStores"},
		{"notation with a bad trust policy", strings.Replace(strings.Replace(notationVerifier, "%s", "certs", 1), "level: strict", "level: lenient", 1), NotConverted, "trustPolicyDoc"},
		{"notation with an unknown parameter", strings.Replace(notationVerifier, "%s", "certs", 1) + "    verificationCertStore: {}\n", NotConverted, "spec.parameters.verificationCertStore: unknown field"},
		{"notation with an azurekeyvault provider", v1beta1 + "kind: KeyManagementProvider\nmetadata: {name: certs}\nspec: {type: azurekeyvault, parameters: {vaultURI: https://v.vault.azure.net/}}\n---\n" + strings.Replace(notationVerifier, "%s", "certs", 1), NotConverted, "reads Azure Key Vault"},
		{"cosign with a certificate provider", inlineCertKMP + "---\n" + cosignVerifier + "    trustPolicies: [{name: default, scopes: ['*'], keys: [{provider: certs}], tLogVerify: false}]\n", NotConverted, "holds certificates, not keys"},
		{"cosign keyless", cosignVerifier + "    trustPolicies: [{name: default, scopes: ['*'], keyless: {certificateIdentityRegExp: '^https://github.com/acme/', certificateOIDCIssuer: 'https://token.actions.githubusercontent.com'}}]\n", ConvertedWithChanges, "create the ConfigMap vouch/vouch-sigstore"},
		{"cosign keyless without an issuer", cosignVerifier + "    trustPolicies: [{name: default, scopes: ['*'], keyless: {certificateIdentity: a@example.com}}]\n", NotConverted, "needs issuer"},
		{"cosign with scopes", cosignVerifier + "    trustPolicies: [{name: default, scopes: ['registry.example.com/*'], keyless: {certificateIdentity: a@example.com, certificateOIDCIssuer: https://accounts.google.com}}]\n", ConvertedWithChanges, "restrict it with policy scopes"},
		{"cosign with two trust policies", cosignVerifier + "    trustPolicies: [{name: a, scopes: ['*']}, {name: b, scopes: ['x/*']}]\n", NotConverted, "2 trust policies"},
		{"cosign with a key file", cosignVerifier + "    trustPolicies: [{name: a, scopes: ['*'], keys: [{file: /keys/cosign.pub}]}]\n", NotConverted, "a file in Ratify's container"},
		{"sbom without settings", v1beta1 + "kind: Verifier\nmetadata: {name: sbom}\nspec: {name: sbom, artifactTypes: application/spdx+json}\n", ConvertedWithChanges, "checks that the SBOM is well formed"},
		{"sbom with a package without name", v1beta1 + "kind: Verifier\nmetadata: {name: sbom}\nspec: {name: sbom, artifactTypes: application/spdx+json, parameters: {disallowedPackages: [{version: '1'}]}}\n", NotConverted, "disallowedPackages[0].name: required"},
		{"vulnerabilityreport with passthrough", v1beta1 + "kind: Verifier\nmetadata: {name: vr}\nspec: {name: vulnerabilityreport, artifactTypes: application/sarif+json, parameters: {passthrough: true, disallowedSeverities: [CRITICAL]}}\n", ConvertedWithChanges, "passthrough dropped"},
		{"vulnerabilityreport with a bad severity", v1beta1 + "kind: Verifier\nmetadata: {name: vr}\nspec: {name: vulnerabilityreport, artifactTypes: application/sarif+json, parameters: {disallowedSeverities: [severe]}}\n", NotConverted, "deniedSeverities"},
		{"vulnerabilityreport for another artifact type", v1beta1 + "kind: Verifier\nmetadata: {name: vr}\nspec: {name: vulnerabilityreport, artifactTypes: application/vnd.example.report}\n", ConvertedWithChanges, "does not check it"},
		{"schemavalidator with a file", v1beta1 + "kind: Verifier\nmetadata: {name: sv}\nspec: {name: schemavalidator, artifactTypes: application/x, parameters: {schemas: {application/json: 'file:///schemas/s.json'}}}\n", NotConverted, "not an http(s) URL"},
		{"licensechecker", v1beta1 + "kind: Verifier\nmetadata: {name: lc}\nspec: {name: licensechecker, artifactTypes: application/spdx+json, parameters: {allowedLicenses: [MIT]}}\n", NotConverted, "denies licenses instead"},
		{"store with an Azure identity", v1beta1 + "kind: Store\nmetadata: {name: s}\nspec: {name: oras, parameters: {authProvider: {name: azureWorkloadIdentity, clientID: x}}}\n", NotConverted, "no cloud credential providers"},
		{"store with two pull secrets", v1beta1 + "kind: Store\nmetadata: {name: s}\nspec: {name: oras, parameters: {authProvider: {name: k8Secrets, secrets: [{secretName: a, namespace: ratify}, {secretName: b}]}}}\n", ConvertedWithChanges, "secrets[1] (b) dropped"},
		{"store with a Docker config file", v1beta1 + "kind: Store\nmetadata: {name: s}\nspec: {name: oras, parameters: {authProvider: {name: dockerConfig, configPath: /ratify/config.json}}}\n", ConvertedWithChanges, "create the Secret vouch-registry"},
		{"namespaced store", v1beta1 + "kind: NamespacedStore\nmetadata: {name: s, namespace: a}\nspec: {name: oras}\n", NotConverted, "cannot set registries"},
		{"rego policy", v1beta1 + "kind: Policy\nmetadata: {name: ratify-policy}\nspec: {type: rego-policy, parameters: {policy: 'package ratify.policy'}}\n", NotConverted, "no Rego policy"},
		{"config policy with passthrough", v1beta1 + "kind: Policy\nmetadata: {name: ratify-policy}\nspec: {type: config-policy, parameters: {passthroughEnabled: true, artifactVerificationPolicies: {application/vnd.cncf.notary.signature: any}}}\n", ConvertedWithChanges, "passthroughEnabled dropped"},
		{"config policy with a bad value", v1beta1 + "kind: Policy\nmetadata: {name: ratify-policy}\nspec: {type: config-policy, parameters: {artifactVerificationPolicies: {default: some}}}\n", NotConverted, `"some" is not any or all`},
		{"config policy with nothing to require", v1beta1 + "kind: Policy\nmetadata: {name: ratify-policy}\nspec: {type: config-policy, parameters: {artifactVerificationPolicies: {default: all}}}\n", NotConverted, "nothing to require"},
		{"an older apiVersion", "apiVersion: config.ratify.deislabs.io/v1alpha1\nkind: Verifier\nmetadata: {name: v}\nspec: {name: notation}\n", NotConverted, "this converter reads config.ratify.deislabs.io/v1beta1"},
		{"an unknown kind", v1beta1 + "kind: Executor\nmetadata: {name: e}\nspec: {}\n", NotConverted, "kind Executor"},
		{"a Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ratify}\nspec: {replicas: 1}\n", Ignored, "not a Ratify configuration resource"},
		{"an inline provider with a bad certificate", v1beta1 + "kind: KeyManagementProvider\nmetadata: {name: k}\nspec: {type: inline, parameters: {contentType: certificate, value: nonsense}}\n", NotConverted, "no PEM certificate"},
		{"an unused inline provider", inlineCertKMP, ConvertedWithChanges, "no converted verifier uses it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert([]Input{{Name: "in.yaml", Data: []byte(tc.input)}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			last := res.Report[len(res.Report)-1]
			if tc.name == "an unused inline provider" {
				last = res.Report[0]
			}
			if last.Outcome != tc.want || !strings.Contains(strings.Join(last.Notes, "; "), tc.note) {
				t.Errorf("got %s\nwant %s with a note containing %q", last, tc.want, tc.note)
			}
			if len(res.Manifest) > 0 {
				if _, err := config.ParseResources(res.Manifest); err != nil {
					t.Errorf("the manifest does not pass config.ParseResources: %v\n%s", err, res.Manifest)
				}
			}
			if res.Complete() != (tc.want != NotConverted) {
				t.Errorf("Complete() = %v", res.Complete())
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"not YAML", "a: [b\n", "in.yaml: document 1: not YAML"},
		{"a scalar", "just text\n", "in.yaml: document 1: not a Kubernetes object"},
		{"no kind", v1beta1 + "metadata: {name: x}\n", "in.yaml: document 1: kind: required"},
		{"no name", "---\n" + v1beta1 + "kind: Verifier\nmetadata: {name: x}\n---\n" + v1beta1 + "kind: Verifier\nmetadata: {}\n", "in.yaml: document 2: metadata.name: required"},
		{"metadata not an object", v1beta1 + "kind: Verifier\nmetadata: [x]\n", "in.yaml: document 1: metadata: expected"},
		{"kind not a string", v1beta1 + "kind: [Verifier]\nmetadata: {name: x}\n", "in.yaml: document 1: kind: expected a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert([]Input{{Name: "in.yaml", Data: []byte(tc.input)}}, Options{})
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an InputError containing %q", err, tc.want)
			}
		})
	}
}

// TestList reads the List that kubectl get -o yaml writes, with the fields
// the API server adds.
func TestList(t *testing.T) {
	input := `apiVersion: v1
kind: List
items:
- apiVersion: config.ratify.deislabs.io/v1beta1
  kind: Verifier
  metadata:
    name: verifier-sbom
    uid: 0a7c
    resourceVersion: "1234"
    finalizers: [a]
    managedFields: [{manager: helm, operation: Update}]
  spec: {name: sbom, artifactTypes: application/spdx+json, parameters: {disallowedPackages: [{name: log4j-core}]}}
  status: {issuccess: true, brieferror: ""}
`
	res, err := Convert([]Input{{Name: "list.yaml", Data: []byte(input)}}, Options{Name: "migrated"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report) != 1 || res.Report[0].Outcome != Converted || res.Report[0].Where != "list.yaml: document 1, items[0]" {
		t.Fatalf("report: %v", res.Report)
	}
	rs, err := config.ParseResources(res.Manifest)
	if err != nil || len(rs) != 1 || rs[0].Name != "migrated" || rs[0].Spec.Verifiers[0].SBOM.DeniedPackages[0] != "log4j-core" {
		t.Fatalf("got %v, %+v", err, rs)
	}
}
