package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

func newVerifyCommand(stdin io.Reader) *cobra.Command {
	var (
		gf          graphFlags
		vf          verifierFlags
		output      string
		verifyEvery bool
	)
	cmd := &cobra.Command{
		Use:   "verify [flags] SUBJECT...",
		Short: "Verify subjects and what is attached to them; exit 0 only if every one is allowed",
		Long: `Verify resolves each SUBJECT (an image or any OCI artifact, by tag or digest),
walks its referrers (signatures, SBOMs, vulnerability reports, attestations and
what is attached to them in turn), checks each with the configured verifiers,
and prints the policy's verdict with the report tree.

A SUBJECT is a registry reference with Docker's normalisation ("alpine" is
docker.io/library/alpine:latest, "host:5000/app@sha256:…" pins a digest) or an
OCI image layout on disk: "oci-layout:PATH:TAG" or "oci-layout:PATH@DIGEST".

vouch fails closed: with no verifier configured, every subject is denied.

Exit codes:
  0   every subject is allowed
  1   a subject is denied
  2   vouch could not decide (registry unreachable, limit exceeded, bad config)
  64  usage error (bad flag, malformed reference)`,
		Example: `  # The sample layout shipped in examples/ (no registry needed)
  vouch verify oci-layout:examples/layout:demo

  # Trust a certificate for Notary Project signatures (no config file)
  vouch verify --notation-cert ca.pem --plain-http 127.0.0.1:5000/app:v1

  # The same trust policy and stores that notation verify uses
  vouch verify --notation-trust-policy ~/.config/notation/trustpolicy.json registry.example/app:v1

  # A config file (registries, verifiers, scoped policy), JSON report
  vouch verify --config vouch.yaml -o json registry.example/app:v1

  # The policy that applies in the Kubernetes namespace prod
  vouch verify --config vouch.yaml --namespace prod registry.example/app:v1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("verify needs at least one SUBJECT")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageErrorf("-o must be text or json, not %q", output)
			}
			refs, err := parseSubjects(args)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(cmd.Flags(), &gf, &vf)
			if err != nil {
				return err
			}
			verifiers, pol, err := vf.build(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			st, err := gf.store(stdin, refs)
			if err != nil {
				return err
			}
			exec := gf.executor(st, verifiers, pol)
			exec.VerifyAll = verifyEvery
			ctx, cancel := context.WithTimeout(cmd.Context(), gf.timeout)
			defer cancel()
			reports := verifyAll(ctx, exec, refs, 4*gf.concurrency)
			summary := vouch.Summarize(reports)
			out := cmd.OutOrStdout()
			if output == "json" {
				err = render.JSON(out, summary)
			} else {
				err = render.Text(out, summary, render.TextOptions{Color: colorOK(out)})
			}
			if err != nil {
				return err
			}
			return verdictExit(summary.Verdict)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&vf.namespace, "namespace", "", "apply the config's policy as in this Kubernetes `NS`: its scopes that name NS, and those that name no namespace (as vouch serve does for an admission request in NS)")
	cmd.Flags().BoolVar(&verifyEvery, "verify-all", false, "check every referrer even once the verdict is settled (by default, once one signature satisfies the policy the signatures beside it are reported skipped, not needed)")
	vf.register(cmd.Flags())
	gf.register(cmd.Flags())
	return cmd
}

// verifyAll verifies refs, up to parallel at once, and returns their
// reports in order.
// Errors are already in each report (verdict undecided, reason).
func verifyAll(ctx context.Context, exec *vouch.Executor, refs []vouch.Reference, parallel int) []*vouch.Report {
	reports := make([]*vouch.Report, len(refs))
	done := make(chan struct{})
	sem := make(chan struct{}, parallel)
	for i, ref := range refs {
		go func() {
			sem <- struct{}{}
			reports[i], _ = exec.Verify(ctx, ref)
			<-sem
			done <- struct{}{}
		}()
	}
	for range refs {
		<-done
	}
	return reports
}

// colorOK reports whether w is a terminal that wants colour.
func colorOK(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
