package pipeline

import (
	"fmt"
	"slices"

	"petbreed"
	"petbreed/internal/classify"
	"petbreed/internal/features"
	"petbreed/internal/onnx"
)

// The pet check and test-time views of the exported model (issue 13).

// petExport calibrates the pet check on the training images' features (x,
// n rows; never the test split) and returns the export options and the
// metadata that carry it: the pet score output and its threshold
// (classify.PetAccept of the training pets accepted), and the
// configuration's test-time views. A backbone that does not end in its
// 1000 ImageNet classes gets no pet check, said in the log.
func petExport(ext *features.Extractor, x []float32, n int, tta []string, logf func(string, ...any)) (onnx.ExportOptions, map[string]string, error) {
	views, err := ttaViews(tta)
	if err != nil {
		return onnx.ExportOptions{}, nil, err
	}
	opt := onnx.ExportOptions{TTA: views}
	meta := map[string]string{}
	if len(tta) > 0 {
		meta[petbreed.MetaTTA] = mustJSON(tta)
	}
	if _, err := onnx.PetScoreModel(ext.Model(), ext.Features()); err != nil {
		logf("pet check: none (%v)", err)
		return opt, meta, nil
	}
	cal, err := classify.CalibratePet(ext.Model(), ext.Features(), x, n, classify.PetAccept)
	if err != nil {
		return opt, nil, fmt.Errorf("pet check: %w", err)
	}
	logf("pet check: threshold %.4g, the pet score of %d of the %d training images (%.1f%%)",
		cal.Threshold, cal.Accepted, cal.Images, 100*float64(cal.Accepted)/float64(cal.Images))
	opt.PetScore = true
	for k, v := range cal.Meta() {
		meta[k] = v
	}
	return opt, meta, nil
}

// checkTTA says what is wrong with the configuration's test-time views.
func checkTTA(tta []string) error {
	_, err := ttaViews(tta)
	return err
}

// ttaViews are the named views of package features (features.Views, but
// not the image itself, which is always one) as the export takes them.
func ttaViews(names []string) ([]onnx.TTAView, error) {
	var out []onnx.TTAView
	for i, name := range names {
		v, err := features.ParseView(name)
		if err != nil {
			return nil, fmt.Errorf("tta: %w", err)
		}
		if v == features.Original || slices.Contains(names[:i], name) {
			return nil, fmt.Errorf("tta: view %q: the image itself, or given twice", name)
		}
		s, _ := v.Spec()
		out = append(out, onnx.TTAView{Name: name, Crop: s.Crop, X: s.X, Y: s.Y, Flip: s.Flip})
	}
	return out, nil
}

// ttaProbabilities is what the exported model answers with the test-time
// views: the mean of the head's probabilities over the views' features
// (views[0] the image itself, n rows each).
func ttaProbabilities(probs func(x []float32, n int) []float32, views [][]float32, n int) []float32 {
	var mean []float32
	for _, x := range views {
		p := probs(x, n)
		if mean == nil {
			mean = make([]float32, len(p))
		}
		for i, v := range p {
			mean[i] += v / float32(len(views))
		}
	}
	return mean
}
