package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"petbreed/internal/pull"
)

func newPullCmd() *cobra.Command {
	var (
		dir, baseURL          string
		quiet                 bool
		maxFiles              int
		maxFileSize, maxTotal string
	)
	cmd := &cobra.Command{
		Use:   "pull pets|backbone [--dir DIR]",
		Short: "Download the Oxford-IIIT Pet dataset or the fp32 MobileNetV2 backbone (checksummed, resumable)",
		Long: `pull downloads from the official locations, verifies the checksums (the md5
sums torchvision pins for the dataset), resumes an interrupted download, and
extracts archives safely (no path escaping DIR, no links, size limits).
Each download is held to its pinned size: a server announcing or sending
more is cut off at the first byte too many, and nothing is kept.

  pets      images.tar.gz and annotations.tar.gz, extracted into DIR (images/, annotations/)
  backbone  mobilenetv2-12.onnx from the ONNX model zoo, saved in DIR`,
		Example: `  petbreed pull pets --dir data/pets
  petbreed pull backbone --dir models`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"pets", "backbone"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := pull.Options{BaseURL: baseURL, Extract: pull.Limits{MaxFiles: maxFiles}}
			var err error
			if opt.Extract.MaxFileSize, err = parseSize(maxFileSize); err != nil {
				return usagef("--max-file-size: %v", err)
			}
			if opt.Extract.MaxTotalSize, err = parseSize(maxTotal); err != nil {
				return usagef("--max-extract-size: %v", err)
			}
			if maxFiles < 1 {
				return usagef("--max-files %d: must be at least 1", maxFiles)
			}
			if !quiet {
				opt.Progress = cmd.ErrOrStderr()
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			switch args[0] {
			case "pets":
				if dir == "" {
					dir = "data/oxford-iiit-pet"
				}
				if err := pull.Pets(ctx, dir, opt); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", dir)
			case "backbone":
				if dir == "" {
					dir = "models"
				}
				path, err := pull.Backbone(ctx, dir, opt)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", path)
			default:
				return usagef("pull what? %q: want pets or backbone", args[0])
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dir, "dir", "", "destination folder (default data/oxford-iiit-pet for pets, models for backbone)")
	fs.StringVar(&baseURL, "base-url", "", "download from this mirror instead (files by name under it)")
	fs.BoolVar(&quiet, "quiet", false, "no progress output")
	fs.IntVar(&maxFiles, "max-files", pull.DefaultMaxFiles, "most entries extracted from one archive")
	fs.StringVar(&maxFileSize, "max-file-size", "1GiB", "largest file extracted from an archive: bytes, or with KiB, MiB, GiB")
	fs.StringVar(&maxTotal, "max-extract-size", "4GiB", "most bytes extracted from one archive, all files together")
	return cmd
}
