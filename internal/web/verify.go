package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"petbreed/internal/classify"
	"petbreed/internal/imaging"
	"petbreed/internal/tracking"
)

// TrialLoad returns a Config.Verify that loads a registered version the way
// the model server does before an alias may point to it: its ONNX file is
// resolved through store (tracking's one Resolve), opened with classify (ONNX Runtime) with opts
// (pass the server's Threads and Labels, so that a version whose classes do
// not fit the server's labels is refused too), checked to be an image
// classifier the server can batch (one float32 [N,3,H,W] input with a
// dynamic or unit batch, a [N,classes] output, a known class count), run
// once on a grey image through its own preprocessing, and closed. The
// error says what is wrong.
//
// The trial costs one model load (a few hundred milliseconds and the
// model's memory for that time); it runs only for an authorised promotion.
func TrialLoad(store tracking.Resolver, opts classify.Options) func(ctx context.Context, name string, version int) error {
	return func(ctx context.Context, name string, version int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if store == nil {
			return errors.New("no tracking store to resolve the version in")
		}
		uri := "models:/" + name + "/" + strconv.Itoa(version)
		ref, err := store.Resolve(uri)
		if err != nil {
			return named(uri, err)
		}
		o := opts
		o.Name = uri
		o.LowMemory = true
		clf, err := classify.Open(ref.Path, o)
		if err != nil {
			return named(uri, err)
		}
		defer clf.Close()
		return trialRun(clf, uri)
	}
}

// trialRun checks what the server needs of a classifier beyond classify's
// own checks, and runs it on one image.
func trialRun(clf *classify.Classifier, uri string) error {
	in := clf.Session().Inputs()[0]
	if b := in.Shape[0]; b > 1 {
		return fmt.Errorf("%s: the model's batch size is fixed to %d: the server needs a dynamic batch size, or 1", uri, b)
	}
	classes := clf.Classes()
	if len(classes) == 0 {
		return fmt.Errorf("%s: the model's class count is not fixed and it has no labels", uri)
	}
	img := imaging.NewRGB(320, 240)
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	batch := make([]float32, clf.TensorLen())
	if err := clf.Prepare(img, batch); err != nil {
		return fmt.Errorf("%s: preprocessing: %w", uri, err)
	}
	probs, err := clf.Run(batch, 1)
	if err != nil {
		return fmt.Errorf("%s: test run: %w", uri, err)
	}
	if len(probs) != 1 || len(probs[0]) != len(classes) {
		return fmt.Errorf("%s: test run gave %d rows of %d scores, want 1 of %d", uri, len(probs), lenFirst(probs), len(classes))
	}
	for _, p := range probs[0] {
		if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			return fmt.Errorf("%s: test run gave a non-finite score (%v)", uri, p)
		}
	}
	return nil
}

// named prefixes err with the version's URI unless it starts with it.
func named(uri string, err error) error {
	if strings.HasPrefix(err.Error(), uri) {
		return err
	}
	return fmt.Errorf("%s: %w", uri, err)
}

func lenFirst(rows [][]float32) int {
	if len(rows) == 0 {
		return 0
	}
	return len(rows[0])
}
