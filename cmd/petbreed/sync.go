package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"petbreed/internal/tracking"
	"petbreed/internal/tracking/backend"
	"petbreed/internal/tracking/trackingsync"
)

// syncEnd is a tracking backend a sync reads from or writes to.
type syncEnd interface {
	trackingsync.Source
	trackingsync.Dest
}

// openSyncEnd opens a tracking URI or folder for a sync: a file store, or
// an MLflow server (with MLflow's MLFLOW_TRACKING_* settings).
func openSyncEnd(uri string) (syncEnd, error) {
	if uri == "" {
		return nil, usagef("sync: an empty tracking URI")
	}
	return backend.Open(uri)
}

func newSyncCmd() *cobra.Command {
	var (
		opt         trackingsync.Options
		experiments []string
	)
	cmd := &cobra.Command{
		Use:   "sync FROM TO [--experiment NAME]... [--run ID]... [--registry]",
		Short: "Copy runs between tracking stores (a folder, a file: URI, an MLflow server's http(s):// URI)",
		Long: `Copy runs from FROM to TO: each run into the experiment of the same name, with its
name, params, full metric histories (steps and timestamps), tags, status, start and end
times, and every artifact byte for byte. With --registry, the registered versions made
from the copied runs and the aliases on them follow. Runs still RUNNING are skipped.

A sync is idempotent: each copy is tagged petbreed.sync.origin with the original's run
id, and a run whose original or complete copy is already in TO is not copied again, so
syncing back and forth copies each run once. A copy that fails midway is ended FAILED and
tagged petbreed.sync.abandoned; the next sync copies the run again.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("sync takes FROM and TO, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if p := tracking.LocalPath(args[0]); !backend.IsRemote(args[0]) && p != "" {
				if _, err := os.Stat(p); err != nil {
					return fmt.Errorf("sync: FROM: %w", err) // a typo must not open a new empty store
				}
			}
			from, err := openSyncEnd(args[0])
			if err != nil {
				return err
			}
			toURI := args[1]
			if p := tracking.LocalPath(toURI); opt.DryRun && !backend.IsRemote(toURI) && p != "" {
				// A dry run creates nothing: a store that does not exist yet
				// is an empty one, stood in for by a folder removed after.
				if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
					tmp, err := os.MkdirTemp("", "petbreed-sync-dry-")
					if err != nil {
						return err
					}
					defer os.RemoveAll(tmp)
					fmt.Fprintf(cmd.OutOrStdout(), "%s does not exist yet (a sync would create it)\n", p)
					toURI = tmp
				}
			}
			to, err := openSyncEnd(toURI)
			if err != nil {
				return err
			}
			if from.URI() == to.URI() {
				return usagef("sync: FROM and TO are the same store (%s)", from.URI())
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			w := cmd.OutOrStdout()
			opt.Experiments = experiments
			opt.Progress = func(r trackingsync.RunResult) { printRunResult(w, r, opt.DryRun) }
			res, err := trackingsync.Sync(ctx, from, to, opt)
			if res != nil {
				printSyncSummary(w, res, opt.DryRun)
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&experiments, "experiment", nil, "copy this experiment's runs (repeatable; default every experiment)")
	fs.StringArrayVar(&opt.Runs, "run", nil, "copy this run (repeatable; default every run)")
	fs.BoolVar(&opt.Registry, "registry", false, "also copy the registered versions of the copied runs and their aliases")
	fs.BoolVar(&opt.DryRun, "dry-run", false, "say what would be copied, write nothing")
	return cmd
}

func printRunResult(w io.Writer, r trackingsync.RunResult, dry bool) {
	switch {
	case r.Copied && dry:
		fmt.Fprintf(w, "would copy %s %q (%s)\n", r.From, r.Name, r.Experiment)
	case r.Copied:
		fmt.Fprintf(w, "copied %s %q (%s) -> %s: %d params, %d metric values, %d artifacts (%d bytes)\n",
			r.From, r.Name, r.Experiment, r.To, r.Params, r.Points, r.Artifacts, r.Bytes)
	case r.To != "":
		fmt.Fprintf(w, "skipped %s %q (%s): %s as %s\n", r.From, r.Name, r.Experiment, r.Reason, r.To)
	default:
		fmt.Fprintf(w, "skipped %s %q (%s): %s\n", r.From, r.Name, r.Experiment, r.Reason)
	}
}

func printSyncSummary(w io.Writer, res *trackingsync.Result, dry bool) {
	verb := "copied"
	if dry {
		verb = "would copy"
	}
	for _, v := range res.Versions {
		if v.Copied {
			fmt.Fprintf(w, "%s %s version %d as version %d\n", verb, v.Model, v.From, v.To)
		}
	}
	for _, a := range res.Aliases {
		was := "none"
		if a.Was != 0 {
			was = "version " + strconv.Itoa(a.Was)
		}
		fmt.Fprintf(w, "alias %s@%s: %s -> version %d\n", a.Model, a.Alias, was, a.Now)
	}
	for _, m := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
	fmt.Fprintf(w, "%s %d of %d runs\n", verb, res.Copied(), len(res.Runs))
}
