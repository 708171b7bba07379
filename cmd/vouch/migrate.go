package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/migrate/ratify"
)

func newMigrateCommand(stdin io.Reader) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Convert another tool's configuration into vouch's",
	}
	cmd.AddCommand(newMigrateRatifyCommand(stdin))
	return cmd
}

func newMigrateRatifyCommand(stdin io.Reader) *cobra.Command {
	var opts ratify.Options
	var configMapsFile string
	cmd := &cobra.Command{
		Use:   "ratify FILE...",
		Short: "Convert Ratify v1 resources into a ClusterVouchConfig and VouchConfigs",
		Long: `Ratify reads Ratify v1's configuration resources (config.ratify.deislabs.io/v1beta1:
Verifier, Store, KeyManagementProvider, CertificateStore, Policy and their
Namespaced forms) from each FILE ("-" for standard input; YAML, one or more
documents, or a List as kubectl get -o yaml writes it) and writes vouch's
resources to standard output: one ClusterVouchConfig for the cluster-scoped
resources, and one VouchConfig per namespace for the namespaced ones. What it
writes has been read back as vouch config validate reads it.

Standard error gets a report, one line per input document:
"converted", "converted with changes: ..." (what differs, and what to create
by hand, such as the ConfigMap holding Sigstore's trusted root) or
"not converted: ..." (why, and what to write instead). Documents that are
not Ratify configuration (a Deployment, a Gatekeeper Provider) are listed as
ignored.

Notation trust policies go into the ConfigMap ` + ratify.ConfigMapName + ` (in --namespace for the
cluster, in the tenant's namespace for a VouchConfig): written to the file
--configmaps names, or else on standard error after the report. Inline
certificates and keys become inline PEM in the resources.

Exit code 0 when every Ratify resource was converted, 1 when one or more
could not be (the rest is still written), 2 when an input cannot be read or
is not YAML manifests, 64 for usage errors.`,
		Example: `  kubectl get verifiers,stores,keymanagementproviders,policies -o yaml > ratify.yaml
  vouch migrate ratify ratify.yaml --configmaps configmaps.yaml > vouch.yaml
  kubectl apply -f configmaps.yaml -f vouch.yaml

  kubectl get namespacedverifiers,namespacedpolicies -A -o yaml | vouch migrate ratify -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("migrate ratify needs at least one FILE (- for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var inputs []ratify.Input
			for _, name := range args {
				data, err := readInput(name, stdin)
				if err != nil {
					return &exitError{code: exitUndecided, err: err}
				}
				if name == "-" {
					name = "(stdin)"
				}
				inputs = append(inputs, ratify.Input{Name: name, Data: data})
			}
			res, err := ratify.Convert(inputs, opts)
			if err != nil {
				var ie *ratify.InputError
				if errors.As(err, &ie) {
					return &exitError{code: exitUndecided, err: err}
				}
				return &exitError{code: exitDenied, err: err}
			}
			stderr := cmd.ErrOrStderr()
			for _, e := range res.Report {
				fmt.Fprintln(stderr, e)
			}
			if len(res.ConfigMaps) > 0 {
				if configMapsFile != "" {
					if err := os.WriteFile(configMapsFile, res.ConfigMaps, 0o644); err != nil {
						return &exitError{code: exitDenied, err: err}
					}
				} else {
					fmt.Fprintf(stderr, "# The resources refer to these ConfigMaps (write them to a file with --configmaps FILE):\n%s", res.ConfigMaps)
				}
			}
			if _, err := cmd.OutOrStdout().Write(res.Manifest); err != nil {
				return err
			}
			if !res.Complete() {
				return &exitError{code: exitDenied, err: errors.New("some Ratify resources were not converted (see above)")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "default", "the name of the ClusterVouchConfig and of each VouchConfig")
	cmd.Flags().StringVar(&opts.Namespace, "namespace", "vouch", "vouch's namespace, where the ClusterVouchConfig's ConfigMap goes")
	cmd.Flags().StringVar(&configMapsFile, "configmaps", "", "write the ConfigMaps the resources refer to to this file (default: standard error)")
	return cmd
}

// readInput reads a file, or standard input for "-", at most
// config.MaxFileBytes.
func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name != "-" {
		data, err := untrusted.ReadFile(name, config.MaxFileBytes)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		return data, nil
	}
	data, err := io.ReadAll(io.LimitReader(stdin, config.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("migrate: standard input: %w", err)
	}
	if len(data) > config.MaxFileBytes {
		return nil, fmt.Errorf("migrate: standard input: more than %d bytes", config.MaxFileBytes)
	}
	return data, nil
}
