package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petbreed/internal/tracking"
	"petbreed/internal/tracking/backend"
)

// defaultModelURI is what commands that need a model use without --model.
const defaultModelURI = "models:/pet-breed@champion"

// resolveModel turns a models:/ or runs:/ URI into the ONNX file it names,
// through tracking's Resolve on the store at $MLFLOW_TRACKING_URI; a plain
// path passes.
func resolveModel(uri string) (string, error) {
	if !strings.HasPrefix(uri, "models:/") && !strings.HasPrefix(uri, "runs:/") {
		return uri, nil
	}
	store, err := backend.Open(trackingURI(""))
	if err != nil {
		return "", err
	}
	ref, err := store.Resolve(uri)
	if err != nil {
		if uri == defaultModelURI && errors.Is(err, tracking.ErrNotFound) {
			return "", fmt.Errorf("%w (train one with `petbreed pipeline`, or pass --model FILE)", err)
		}
		return "", err
	}
	return ref.Path, nil
}

func newRunsCmd() *cobra.Command {
	var (
		experiment, storeURI string
		asJSON               bool
		sortBy               string
	)
	cmd := &cobra.Command{
		Use:   "runs [--experiment NAME] [--sort METRIC]",
		Short: "List and compare tracked runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := backend.Open(trackingURI(storeURI))
			if err != nil {
				return err
			}
			expID, err := findExperiment(store, store.URI(), experiment)
			if err != nil {
				return err
			}
			runs, err := store.Runs(expID)
			if err != nil {
				return err
			}
			if sortBy != "" {
				desc := !strings.HasSuffix(sortBy, "loss")
				sort.SliceStable(runs, func(i, j int) bool {
					a, aok := runs[i].Metrics[sortBy]
					b, bok := runs[j].Metrics[sortBy]
					if aok != bok {
						return aok
					}
					if desc {
						return a > b
					}
					return a < b
				})
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(runs)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tNAME\tSTATUS\tSTARTED\tDURATION\tLR / L2\tBATCH\tEPOCHS\tVAL ACC\tVAL LOSS\tTEST ACC")
			for _, r := range runs {
				dur := "-"
				if !r.End.IsZero() {
					dur = r.End.Sub(r.Start).Round(10 * time.Millisecond).String()
				}
				metric := func(k string, pct bool) string {
					v, ok := r.Metrics[k]
					if !ok {
						return "-"
					}
					if pct {
						return fmt.Sprintf("%.2f%%", 100*v)
					}
					return fmt.Sprintf("%.4f", v)
				}
				name := r.Name
				if r.Tags[tracking.TagSelected] == "true" {
					name += " *"
				}
				rate, batch, epochs := runHyper(r)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID[:8], name, r.Status,
					r.Start.Local().Format("2006-01-02 15:04:05"), dur, rate, batch, epochs,
					metric(tracking.MetricFinalValAcc, true), metric(tracking.MetricFinalValLoss, false), metric(tracking.MetricTestAcc, true))
			}
			return tw.Flush()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&experiment, "experiment", "pet-breed", "experiment name")
	fs.StringVar(&storeURI, "tracking", "", "MLflow tracking URI or folder (default $MLFLOW_TRACKING_URI, else ./mlruns)")
	fs.StringVar(&sortBy, "sort", "", "sort by this metric (descending; ascending for losses)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// runHyper is what the runs table shows of a run's recipe: an Adam run's
// learning rate, batch size and epochs; for a head solved exactly (solver
// lbfgs: full batch, no epochs) the L2 strength its selection chose.
func runHyper(r tracking.RunInfo) (rate, batch, epochs string) {
	dash := func(v string) string {
		if v == "" {
			return "-"
		}
		return v
	}
	if r.Params["solver"] == "lbfgs" {
		rate = "-"
		if l2, ok := r.Metrics["l2"]; ok {
			rate = "l2 " + strconv.FormatFloat(l2, 'g', 3, 64)
		}
		return rate, "full", "-"
	}
	return dash(r.Params["lr"]), dash(r.Params["batch_size"]), dash(r.Params["epochs"])
}

func findExperiment(store tracking.ExperimentReader, where, name string) (string, error) {
	exps, err := store.Experiments()
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range exps {
		if e.Name == name {
			return e.ID, nil
		}
		names = append(names, e.Name)
	}
	return "", fmt.Errorf("no experiment %q in %s (have: %s)", name, where, strings.Join(names, ", "))
}

func newModelsCmd() *cobra.Command {
	var (
		name, storeURI string
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "models [--name NAME]",
		Short: "List a registered model's versions and aliases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := backend.Open(trackingURI(storeURI))
			if err != nil {
				return err
			}
			versions, err := store.ModelVersions(name)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(versions)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tALIASES\tCREATED\tRUN\tSOURCE")
			for _, v := range versions {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", v.Version, strings.Join(v.Aliases, ","),
					v.Created.Local().Format("2006-01-02 15:04:05"), v.RunID, v.Source)
			}
			return tw.Flush()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&name, "name", "pet-breed", "registered model name")
	fs.StringVar(&storeURI, "tracking", "", "MLflow tracking URI or folder (default $MLFLOW_TRACKING_URI, else ./mlruns)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
