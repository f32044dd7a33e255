package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"petbreed"
	"petbreed/internal/classify"
	"petbreed/internal/onnx"
	"petbreed/internal/quantize"
)

func newClassesCmd() *cobra.Command {
	var (
		mf     modelFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "classes [--model FILE] [--labels FILE]",
		Short: "List the classes a model predicts, in output order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			var classes []string
			if mf.model == "" && mf.labels != "" {
				// A labels file alone needs no model.
				c, err := classify.LoadLabels(mf.labels)
				if err != nil {
					return err
				}
				classes = c
			} else {
				c, err := mf.open()
				if err != nil {
					return err
				}
				defer c.Close()
				classes = c.Classes()
				if !c.HasLabels() {
					fmt.Fprintln(cmd.ErrOrStderr(), "petbreed: the model carries no labels and none were given: printing class indices")
				}
			}
			if asJSON {
				return json.NewEncoder(w).Encode(map[string]any{"classes": classes, "count": len(classes)})
			}
			for _, c := range classes {
				fmt.Fprintln(w, c)
			}
			return nil
		},
	}
	mf.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"classes": [...], "count": N}`)
	return cmd
}

// inspectReport is `inspect --json`.
type inspectReport struct {
	Path            string            `json:"path"`
	Size            int64             `json:"size"`
	SHA256          string            `json:"sha256"`
	IRVersion       int64             `json:"ir_version"`
	Opsets          map[string]int64  `json:"opsets"`
	Producer        string            `json:"producer,omitempty"`
	ProducerVersion string            `json:"producer_version,omitempty"`
	Graph           string            `json:"graph,omitempty"`
	Nodes           int               `json:"nodes"`
	Initializers    int               `json:"initializers"`
	Inputs          []string          `json:"inputs"`
	Outputs         []string          `json:"outputs"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	// Quantization is set for a quantized model (quantize.Describe).
	Quantization *quantize.Summary `json:"quantization,omitempty"`
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Long:  "inspect reads an ONNX file (or a models:/ or runs:/ URI) without running it.",
		Short: "Show a model's inputs, outputs, opsets, size, sha256 and metadata",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := resolveModel(args[0])
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			info, err := onnx.ParseInfo(data)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			sum := sha256.Sum256(data)
			r := inspectReport{
				Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
				IRVersion: info.IRVersion, Opsets: map[string]int64{},
				Producer: info.ProducerName, ProducerVersion: info.ProducerVersion, Graph: info.GraphName,
				Nodes: info.Nodes, Initializers: info.Initializers, Metadata: info.Metadata,
			}
			for _, o := range info.Opsets {
				r.Opsets[o.Domain] = o.Version
			}
			if m, err := onnx.Decode(data); err == nil {
				if q, ok := quantize.Describe(m); ok {
					r.Quantization = &q
				}
			}
			for _, v := range info.Inputs {
				r.Inputs = append(r.Inputs, v.String())
			}
			for _, v := range info.Outputs {
				r.Outputs = append(r.Outputs, v.String())
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printInspect(w, r, info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printInspect(w io.Writer, r inspectReport, info *onnx.ModelInfo) {
	fmt.Fprintf(w, "model      %s\n", r.Path)
	fmt.Fprintf(w, "size       %d bytes\n", r.Size)
	fmt.Fprintf(w, "sha256     %s\n", r.SHA256)
	fmt.Fprintf(w, "ir         %d\n", r.IRVersion)
	ops := make([]string, len(info.Opsets))
	for i, o := range info.Opsets {
		ops[i] = o.String()
	}
	fmt.Fprintf(w, "opsets     %s\n", strings.Join(ops, ", "))
	if r.Producer != "" {
		fmt.Fprintf(w, "producer   %s %s\n", r.Producer, r.ProducerVersion)
	}
	fmt.Fprintf(w, "graph      %s (%d nodes, %d initializers)\n", r.Graph, r.Nodes, r.Initializers)
	for _, s := range r.Inputs {
		fmt.Fprintf(w, "input      %s\n", s)
	}
	for _, s := range r.Outputs {
		fmt.Fprintf(w, "output     %s\n", s)
	}
	if r.Quantization != nil {
		fmt.Fprintf(w, "quantized  %s\n", r.Quantization)
	}
	for _, o := range info.Outputs {
		if o.Name == onnx.ExportPetScore {
			t, ok := r.Metadata[petbreed.MetaPetThreshold]
			if !ok {
				t = fmt.Sprintf("%g (the default: none in the metadata)", classify.DefaultPetThreshold)
			}
			fmt.Fprintf(w, "pet check  %s under %s: not a cat or a dog\n", o.Name, t)
		}
	}
	for _, k := range info.MetadataKeys() {
		v := r.Metadata[k]
		if len(v) > 200 {
			v = v[:200] + fmt.Sprintf("... (%d bytes)", len(v))
		}
		fmt.Fprintf(w, "metadata   %s = %s\n", k, v)
	}
}
