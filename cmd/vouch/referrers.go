package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

func newReferrersCommand(stdin io.Reader) *cobra.Command {
	var (
		gf           graphFlags
		output       string
		artifactType string
		cosignTags   bool
		tagSchema    bool
		vf           verifierFlags
	)
	cmd := &cobra.Command{
		Use:   "referrers [flags] SUBJECT",
		Short: "Show the graph of artifacts attached to a subject",
		Long: `Referrers walks SUBJECT's supply-chain graph, as verify does, without
verifying it: the referrers found by the OCI 1.1 referrers API (or the
"sha256-<hex>" tag-schema fallback), cosign's ".sig"/".att" tags, what refers
to those in turn, and the platform manifests of an image index.

Output formats: "tree" (default), "json", and "dot" for Graphviz.`,
		Example: `  vouch referrers oci-layout:examples/layout:demo
  vouch referrers --plain-http -o json 127.0.0.1:5000/app:v1
  vouch referrers -o dot 127.0.0.1:5000/app:v1 | dot -Tpng > graph.png`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("referrers needs exactly one SUBJECT")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "tree" && output != "json" && output != "dot" {
				return usageErrorf("-o must be tree, json or dot, not %q", output)
			}
			refs, err := parseSubjects(args)
			if err != nil {
				return err
			}
			_, err = loadConfig(cmd.Flags(), &gf, &vf)
			if err != nil {
				return err
			}
			st, err := gf.store(stdin, refs)
			if err != nil {
				return err
			}
			exec := gf.executor(st, nil, nil)
			exec.Discovery = vouch.Discovery{CosignTags: cosignTags, TagSchema: tagSchema, ArtifactType: artifactType}
			ctx, cancel := context.WithTimeout(cmd.Context(), gf.timeout)
			defer cancel()
			root, pinned, err := exec.Graph(ctx, refs[0])
			if err != nil {
				return &exitError{code: exitUndecided, err: fmt.Errorf("%s: %w", refs[0], err)}
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				return render.GraphJSON(out, root)
			case "dot":
				return render.DOT(out, root, pinned.String())
			default:
				return render.Tree(out, root, render.TextOptions{Title: pinned.String()})
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "tree", "output format: tree, json or dot")
	cmd.Flags().StringVar(&artifactType, "artifact-type", "", "show only direct referrers of this artifact `TYPE`")
	cmd.Flags().BoolVar(&cosignTags, "cosign-tags", true, "also look for cosign's sha256-<hex>.sig and .att tags")
	cmd.Flags().BoolVar(&tagSchema, "referrers-tag-schema", false, "also read the sha256-<hex> referrers tag when the registry has the referrers API")
	cmd.Flags().StringVarP(&vf.configPath, "config", "c", "", "vouch config `FILE`: its registry settings and limits apply")
	gf.register(cmd.Flags())
	return cmd
}
