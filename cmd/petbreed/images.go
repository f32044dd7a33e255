package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"petbreed"
	"petbreed/internal/atomicfile"
	"petbreed/internal/imaging"
	"petbreed/internal/npy"
)

func newResizeCmd() *cobra.Command {
	var (
		width, height int
		filter        string
		quality       int
		dec           decodeFlags
	)
	cmd := &cobra.Command{
		Use:   "resize IN OUT --width W --height H",
		Short: "Resize an image with Pillow's filters; the output format comes from OUT's extension",
		Example: `  petbreed resize cat.jpg small.png --width 320 --height 240
  petbreed resize cat.png thumb.jpg --width 128 --height 128 --filter lanczos`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, out := args[0], args[1]
			if width <= 0 || height <= 0 || width > 16384 || height > 16384 {
				return usagef("--width and --height must be between 1 and 16384 (got %dx%d)", width, height)
			}
			f, err := imaging.ParseFilter(filter)
			if err != nil {
				return usageError{err}
			}
			format, err := imaging.OutputFormat(out)
			if err != nil {
				return usageError{err}
			}
			img, info, err := decodeFile(in, dec.options())
			if err != nil {
				return err
			}
			res := imaging.Resize(img, width, height, f)
			if err := writeImage(out, res, format, quality); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %dx%d %s → %s: %dx%d %s\n", in, img.W, img.H, info.Format, out, width, height, format)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&width, "width", 0, "output width in pixels (required)")
	fs.IntVar(&height, "height", 0, "output height in pixels (required)")
	fs.StringVar(&filter, "filter", "bilinear", "resampling filter: bilinear, bicubic, lanczos or nearest")
	fs.IntVar(&quality, "quality", 95, "JPEG quality (1-100)")
	dec.register(fs)
	return cmd
}

func newPreprocessCmd() *cobra.Command {
	var (
		mode, filter string
		size, resize int
		grayscale    bool
		tensorOut    string
		dec          decodeFlags
	)
	def := petbreed.DefaultPreprocess()
	cmd := &cobra.Command{
		Use:   "preprocess IN OUT",
		Short: "Write the image the model sees (before normalisation), and optionally its tensor",
		Long: `preprocess writes exactly the image a model sees, before normalisation, as
PNG or JPEG (from OUT's extension). With --tensor it also writes the
normalised float32 NCHW tensor [1,3,size,size] as a NumPy .npy file.

Modes: crop (torchvision's evaluation transform: short side to --resize with
Pillow's filter, centre crop --size) and squash (resize to --size x --size).
--grayscale converts to grey first (Pillow's convert('L')) and repeats it on
three channels, as torchvision's Grayscale(3) does.`,
		Example: `  petbreed preprocess cat.jpg seen.png
  petbreed preprocess cat.jpg seen.png --mode squash --filter bicubic --tensor cat.npy`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, out := args[0], args[1]
			p := def
			p.Mode, p.Filter, p.Size, p.Resize, p.Grayscale = mode, filter, size, resize, grayscale
			if err := p.Validate(); err != nil {
				return usageError{err}
			}
			format, err := imaging.OutputFormat(out)
			if err != nil {
				return usageError{err}
			}
			img, _, err := decodeFile(in, dec.options())
			if err != nil {
				return err
			}
			seen, err := imaging.Apply(img, p)
			if err != nil {
				return err
			}
			if tensorOut != "" {
				t := make([]float32, 3*seen.W*seen.H)
				if err := imaging.Normalize(seen, p.Mean, p.Std, t); err != nil {
					return err
				}
				err := atomicfile.Write(tensorOut, 0o644, func(w io.Writer) error {
					return npy.WriteFloat32(w, t, []int{1, 3, seen.H, seen.W})
				})
				if err != nil {
					return err
				}
			}
			if err := writeImage(out, seen, format, 100); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %dx%d → %s: %dx%d (%s, %s)\n", in, img.W, img.H, out, seen.W, seen.H, p.Mode, p.Filter)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&mode, "mode", def.Mode, "crop (resize the short side, centre crop) or squash (resize to a square)")
	fs.StringVar(&filter, "filter", def.Filter, "resampling filter: bilinear, bicubic, lanczos or nearest")
	fs.IntVar(&size, "size", def.Size, "side of the square the model sees")
	fs.IntVar(&resize, "resize", def.Resize, "crop mode: short side before the centre crop")
	fs.BoolVar(&grayscale, "grayscale", false, "convert to grey (Pillow's convert('L')) on three channels")
	fs.StringVar(&tensorOut, "tensor", "", "also write the normalised float32 NCHW tensor to this .npy file")
	dec.register(fs)
	return cmd
}

// writeImage encodes img to path through a temporary file.
func writeImage(path string, img *imaging.RGB, format string, quality int) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return imaging.Encode(w, img, format, quality)
	})
}
