// Command vouch verifies the supply-chain metadata attached to container
// images and other OCI artifacts (signatures, SBOMs, vulnerability reports,
// attestations) against a policy. See `vouch --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch"

	// Its init keeps the garbage collector off while the dependencies
	// initialise; see its doc.
	"github.com/vouch-project/vouch/cmd/vouch/internal/gcpause"
)

// Exit codes, as documented in `vouch verify --help`.
const (
	exitAllowed   = 0
	exitDenied    = 1
	exitUndecided = 2
	exitUsage     = 64
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitAllowed
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != errSilent {
			fmt.Fprintf(stderr, "vouch: %v\n", ee.err)
		}
		if ee.code == exitUsage {
			fmt.Fprintln(stderr, "Run 'vouch --help' for usage.")
		}
		return ee.code
	}
	// Errors cobra raises itself (unknown command or flag) are usage errors.
	fmt.Fprintf(stderr, "vouch: %v\n", err)
	if isCobraUsageError(err) {
		fmt.Fprintln(stderr, "Run 'vouch --help' for usage.")
		return exitUsage
	}
	return exitUndecided
}

// errSilent is an exitError's error when the command already said why.
var errSilent = errors.New("")

// verdictExit is the exit of a command that printed its verdict: 0
// allowed, 1 denied, 2 could not decide.
func verdictExit(v vouch.Verdict) error {
	switch v {
	case vouch.Allowed:
		return nil
	case vouch.Denied:
		return &exitError{code: exitDenied, err: errSilent}
	}
	return &exitError{code: exitUndecided, err: errSilent}
}

func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func newRootCommand(stdin io.Reader) *cobra.Command {
	root := &cobra.Command{
		Use:   "vouch",
		Short: "Verify what is attached to container images before they run",
		Long: `vouch answers one question before an image runs: is this artifact, and
everything attached to it, vouched for by someone I trust, under my policy?

It walks the artifact's supply-chain graph in an OCI registry or an OCI image
layout on disk (signatures, SBOMs, vulnerability reports, attestations, found
as OCI 1.1 referrers or by the tag-schema fallback), checks each node with the
configured verifiers, and prints a verdict with the report behind it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	serve := newServeCommand(stdin)
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if cmd == serve {
			// A server lives long: it collects garbage as GOGC says from
			// the start rather than after its heap first nears gcpause.Limit.
			gcpause.Resume()
		}
	}
	root.AddCommand(newVerifyCommand(stdin), newAuditCommand(stdin), newReferrersCommand(stdin), newConfigCommand(), newPolicyCommand(stdin), newMigrateCommand(stdin), newVersionCommand(), serve)
	return root
}
