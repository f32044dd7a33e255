package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"petbreed/internal/dataset"
	"petbreed/internal/tracking"
)

// splitInputs are one pipeline's dataset inputs, one per split, as MLflow's
// client records a dataset a run used (mlflow.log_input): the dataset
// folder's base name, a digest of the split, source_type "local" with the
// folder's file: URI, and a profile with the split's size. Every
// experiment's run records the data it trained on ("train": the training
// split, or all of trainval for a refit or with cross-validation) and the
// one it was selected by ("validation"); the champion's run also records
// the test split ("test") when it is evaluated.
type splitInputs struct {
	train, val, trainVal, test tracking.DatasetInput
}

func newSplitInputs(ds *dataset.Dataset, trainS, valS []dataset.Sample) splitInputs {
	name := filepath.Base(absPath(ds.Root))
	uri, _ := json.Marshal(tracking.FileURI(absPath(ds.Root)))
	source := `{"uri": ` + string(uri) + `}` // as Python's json.dumps writes it
	in := func(samples []dataset.Sample, context string) tracking.DatasetInput {
		return tracking.DatasetInput{
			Dataset: tracking.Dataset{
				Name:       name,
				Digest:     splitDigest(ds.Root, ds.Classes, samples),
				SourceType: tracking.SourceTypeLocal,
				Source:     source,
				Profile:    fmt.Sprintf(`{"num_images": %d, "num_classes": %d}`, len(samples), len(ds.Classes)),
			},
			Tags: map[string]string{tracking.TagDatasetContext: context},
		}
	}
	tv := append(append([]dataset.Sample{}, trainS...), valS...)
	return splitInputs{
		train:    in(trainS, tracking.ContextTrain),
		val:      in(valS, tracking.ContextValidation),
		trainVal: in(tv, tracking.ContextTrain),
		test:     in(ds.Test, tracking.ContextTest),
	}
}

// splitDigest identifies a split by its content's listing: the sha256 of
// its images' paths below the dataset's root and their classes, one
// "path\tclass\n" line each, sorted, so the same split of the same data has
// the same digest wherever the folder is; truncated to 8 hex digits, as
// MLflow's own digests are.
func splitDigest(root string, classes []string, samples []dataset.Sample) string {
	lines := make([]string, len(samples))
	for i, s := range samples {
		p := s.Path
		if rel, err := filepath.Rel(root, s.Path); err == nil {
			p = rel
		}
		class := ""
		if s.Label >= 0 && s.Label < len(classes) {
			class = classes[s.Label]
		}
		lines[i] = filepath.ToSlash(p) + "\t" + class + "\n"
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "")))
	return hex.EncodeToString(h[:])[:8]
}

// logInputs records inputs on run when its backend keeps dataset inputs
// (both of petbreed's do; a backend without them is left without).
func logInputs(run tracking.RunWriter, inputs ...tracking.DatasetInput) error {
	il, ok := run.(tracking.InputLogger)
	if !ok || len(inputs) == 0 {
		return nil
	}
	return il.LogInputs(inputs)
}
