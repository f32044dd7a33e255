package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"petbreed/internal/ab"
)

func newABCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ab",
		Short: "Compare served model versions from the server's prediction log",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("ab needs a subcommand: report")
		},
	}
	cmd.AddCommand(newABReportCmd())
	return cmd
}

func newABReportCmd() *cobra.Command {
	var (
		asJSON   bool
		champion string
	)
	cmd := &cobra.Command{
		Use:   "report LOG... [--json] [--champion VERSION]",
		Short: "Print the comparison of the versions in a prediction log (its rotated files included)",
		Long: `Print, per model version in the prediction log LOG (with the LOG.1, LOG.2, ...
that rotation left; several LOGs, say one per server, are read as one): its
share of the answered requests, its shadow answers, mean top-1 confidence and
latency, agreement with the champion on the requests both answered, online
accuracy where feedback gave the true label (with a Wilson 95% interval), a
two-proportion z-test of its accuracy against the champion's, and McNemar's
exact test on the requests with feedback both answered.

The champion is --champion (VERSION, or MODEL/VERSION), else the version that
answered the most requests. Unreadable lines (a torn last line) are skipped and
counted. Exit codes: 0, 1 when a log cannot be read, 2 on a usage error.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			es, err := ab.Read(args...)
			if err != nil {
				return err
			}
			rep, err := es.Compare(champion)
			if err != nil {
				return usageError{err}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(w)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&champion, "champion", "", "the champion: VERSION or MODEL/VERSION (default: the version with the most requests)")
	return cmd
}
