package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/untrusted"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with vouch config files and custom resources",
	}
	cmd.AddCommand(newConfigValidateCommand(), newConfigConvertCommand())
	return cmd
}

func newConfigValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file or custom resources, and the trust material a file names, without verifying anything",
		Long: `Validate reads FILE strictly (an unknown field is an error that names its
path), checks every value, and loads the trust policies and certificates it
names. Exit code 0 when the file is valid, 1 when it is not.

FILE may also be a manifest of vouch's custom resources (ClusterVouchConfig,
VouchConfig; one or several YAML documents): each is checked by the same
code, in its form (references to Secrets and ConfigMaps instead of files,
and for a VouchConfig no registries or limits). References are checked for
their shape, not read: this command does not talk to a cluster.`,
		Example: `  vouch config validate examples/config/vouch.yaml
  vouch config validate examples/kubernetes/cluster.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("config validate needs exactly one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := untrusted.ReadFile(args[0], config.MaxFileBytes)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("config: %w", err)}
			}
			if config.IsManifest(data) {
				rs, err := config.ParseResources(data)
				if err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
				}
				for _, r := range rs {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s: valid (%s)\n", args[0], r.String(), summary(&r.Spec))
				}
				return nil
			}
			cfg, err := config.Load(args[0])
			if err == nil {
				// Key-vault material is fetched as vouch verify would.
				vf := verifierFlags{configPath: args[0]}
				err = vf.loadVault(cmd.Context(), cfg)
			}
			if err == nil {
				_, _, err = cfg.Build()
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%s)\n", args[0], summary(&cfg.Spec))
			return nil
		},
	}
}

// summary counts what a spec holds.
func summary(s *config.Spec) string {
	scopes := 0
	if s.Policy != nil {
		scopes = len(s.Policy.Scopes)
	}
	return fmt.Sprintf("%d verifiers, %d trust stores, %d policy scopes", len(s.Verifiers), len(s.TrustStores), scopes)
}

func newConfigConvertCommand() *cobra.Command {
	var name, namespace string
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "Convert a config file to a ClusterVouchConfig manifest, or back",
		Long: `Convert writes to standard output FILE in the other form:

A config file becomes a ClusterVouchConfig. Certificates and public keys
(trust store files, cosign keys and certificate roots) are read and written
inline as PEM, so the resource holds them itself. Other files (Notation trust
policies, Sigstore trusted roots, schemas) become references to keys of the
ConfigMap ` + config.ConvertConfigMap + `, and the Docker config a reference to the
Secret ` + config.ConvertDockerSecret + `; the kubectl commands that create them from
the files are printed on standard error. A Notation configDir cannot be
converted: name its certificates in trustStores.

A ClusterVouchConfig manifest becomes a config file (version v1). Inline PEM
stays inline; references cannot be read by a config file, so a resource with
any is refused, each one listed.`,
		Example: `  vouch config convert examples/config/vouch.yaml > cluster.yaml
  vouch config convert cluster.yaml > vouch.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("config convert needs exactly one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := untrusted.ReadFile(args[0], config.MaxFileBytes)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("config: %w", err)}
			}
			var out []byte
			if config.IsManifest(data) {
				rs, err := config.ParseResources(data)
				if err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
				}
				if len(rs) != 1 {
					return &exitError{code: 1, err: fmt.Errorf("%s: %d resources; convert one ClusterVouchConfig at a time", args[0], len(rs))}
				}
				f, err := rs[0].File()
				if err == nil {
					out, err = f.YAML()
				}
				if err != nil {
					return &exitError{code: 1, err: err}
				}
			} else {
				f, err := config.Load(args[0])
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				c, err := f.Cluster()
				if err == nil {
					out, err = c.Spec.Manifest(name)
				}
				if err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
				}
				if cmds := c.Commands(namespace); len(cmds) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "# The resource refers to objects in vouch's namespace; create them with:\n%s\n", strings.Join(cmds, "\n"))
				}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "default", "the ClusterVouchConfig's name")
	cmd.Flags().StringVar(&namespace, "namespace", "vouch", "vouch's namespace, in the kubectl commands printed")
	return cmd
}
