package web

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"petbreed/internal/classify"
	"petbreed/internal/tracking"
)

// TrialLoad returns a Config.Verify that loads a registered version the way
// the model server does before an alias may point to it: its ONNX file is
// resolved through store (tracking's one Resolve), opened with classify (ONNX Runtime) with opts
// (pass the server's Threads and Labels, so that a version whose classes do
// not fit the server's labels is refused too), checked with the server's
// own check (classify's CheckServable: an image classifier it can batch,
// run once on a grey image), and closed. The error says what is wrong.
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
		if err := clf.CheckServable(); err != nil {
			return named(uri, err)
		}
		return nil
	}
}

// named prefixes err with the version's URI unless it starts with it.
func named(uri string, err error) error {
	if strings.HasPrefix(err.Error(), uri) {
		return err
	}
	return fmt.Errorf("%s: %w", uri, err)
}
