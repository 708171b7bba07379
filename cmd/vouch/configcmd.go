package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch/config"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with vouch config files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file, and the trust material it names, without verifying anything",
		Long: `Validate reads FILE strictly (an unknown field is an error that names its
path), checks every value, and loads the trust policies and certificates it
names. Exit code 0 when the file is valid, 1 when it is not.`,
		Example: `  vouch config validate examples/config/vouch.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("config validate needs exactly one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err == nil {
				_, _, err = cfg.Build()
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			scopes := 0
			if cfg.Policy != nil {
				scopes = len(cfg.Policy.Scopes)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d verifiers, %d trust stores, %d policy scopes)\n", args[0], len(cfg.Verifiers), len(cfg.TrustStores), scopes)
			return nil
		},
	})
	return cmd
}
