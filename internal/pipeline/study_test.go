package pipeline

import (
	"context"
	"fmt"
	"os"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/testassets"
	"petbreed/internal/train"
)

// TestRecipeStudy is the measurement behind the default configuration
// (docs/training.md), not a regression test: it trains every recipe and both
// pipelines on pets-3breeds for ten split/initialisation seeds and prints
// mean validation and test accuracies. PB_PER_CLASS=N keeps N training images
// per class (a low-data regime where recipes differ more).
//
//	PB_STUDY=1 go test -v -run RecipeStudy ./internal/pipeline/
func TestRecipeStudy(t *testing.T) {
	if os.Getenv("PB_STUDY") == "" {
		t.Skip("a study, not a test: set PB_STUDY=1")
	}
	ds, _ := dataset.Load(testassets.Path(t, "pets-3breeds"))
	ext, err := features.NewExtractor(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), 0)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := features.OpenCache(features.DefaultDir(), ext)
	if err != nil {
		t.Fatal(err)
	}
	recipes := []Recipe{
		{Name: "orig_lr0.001_bs32", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 10, Dropout: 0.2}},
		{Name: "orig_lr0.005_bs32", Hyper: train.Hyper{LR: 0.005, BatchSize: 32, Epochs: 10, Dropout: 0.2}},
		{Name: "orig_lr0.001_bs64", Hyper: train.Hyper{LR: 0.001, BatchSize: 64, Epochs: 10, Dropout: 0.2}},
		{Name: "flip10", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 10, Dropout: 0.2}, Flip: true},
		{Name: "es", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 100, Patience: 10, Dropout: 0.2}},
		{Name: "flip_es", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 100, Patience: 10, Dropout: 0.2}, Flip: true},
		{Name: "flip_wd_es", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 100, Patience: 10, Dropout: 0.2, WeightDecay: 1e-4, AdamW: true}, Flip: true},
		{Name: "flip_wd_ls_es", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 100, Patience: 10, Dropout: 0.2, WeightDecay: 1e-4, AdamW: true, LabelSmoothing: 0.1}, Flip: true},
		{Name: "flip_wd1e-2_es", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 100, Patience: 10, Dropout: 0.2, WeightDecay: 1e-2, AdamW: true}, Flip: true},
		{Name: "flip_do5_es", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 100, Patience: 10, Dropout: 0.5}, Flip: true},
		{Name: "flip_lr3e-4_es", Hyper: train.Hyper{LR: 0.0003, BatchSize: 32, Epochs: 200, Patience: 15, Dropout: 0.2}, Flip: true},
		{Name: "flip30", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 30, Dropout: 0.2}, Flip: true},
	}
	perClass := 0
	if v := os.Getenv("PB_PER_CLASS"); v != "" {
		fmt.Sscan(v, &perClass)
	}
	var origPipe, ourPipe, ourNoRefit float64
	type acc struct{ val, test, epochs float64 }
	res := map[string]*acc{}
	seeds := 10
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		trS, vaS := dataset.Split(ds.TrainVal, 0.2, seed)
		if perClass > 0 {
			n := map[int]int{}
			var sub []dataset.Sample
			for _, s := range trS {
				if n[s.Label] < perClass {
					sub = append(sub, s)
					n[s.Label]++
				}
			}
			trS = sub
		}
		all := append(append(append([]dataset.Sample{}, trS...), vaS...), ds.Test...)
		fr, err := features.Compute(context.Background(), ext, cache, all, features.Options{Views: []features.View{features.Original, features.Flipped}})
		if err != nil {
			t.Fatal(err)
		}
		nTr, nVa := len(trS), len(vaS)
		trO := rowsOf(fr, all, 0, nTr, features.Original)
		trF := concat(trO, rowsOf(fr, all, 0, nTr, features.Flipped))
		va := rowsOf(fr, all, nTr, nTr+nVa, features.Original)
		te := rowsOf(fr, all, nTr+nVa, len(all), features.Original)
		// The pipelines: the original's (its three, best by val, no refit)
		// and ours (the default config: four, best by val, refit).
		pipe := func(exps []Recipe, refit bool) float64 {
			var best Recipe
			var bestH *train.Head
			bestVal, bestEp := -1.0, 0
			for _, r := range exps {
				tr := trO
				if r.Flip {
					tr = trF
				}
				h, ep, _ := train.Train(r.trainConfig(seed), tr, va, 3, nil)
				if v := train.Evaluate(h, va).Acc; v > bestVal {
					best, bestH, bestVal, bestEp = r, h, v, bestEpoch(ep, r.Patience > 0)
				}
			}
			if refit {
				e := best
				e.Epochs, e.Patience = max(bestEp, 1), 0
				trAll := concat(trO, va)
				if e.Flip {
					trAll = concat(trAll, concat(rowsOf(fr, all, 0, nTr, features.Flipped), rowsOf(fr, all, nTr, nTr+nVa, features.Flipped)))
				}
				bestH, _, _ = train.Train(e.trainConfig(seed), trAll, train.Data{}, 3, nil)
			}
			return train.Evaluate(bestH, te).Acc / float64(seeds)
		}
		def := previousConfig().Recipes // the Adam recipes this study is about
		origPipe += pipe(def[:3], false)
		ourNoRefit += pipe(def, false)
		ourPipe += pipe(def, true)
		for _, r := range recipes {
			tr := trO
			if r.Flip {
				tr = trF
			}
			h, ep, err := train.Train(r.trainConfig(seed), tr, va, 3, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := res[r.Name]
			if a == nil {
				a = &acc{}
				res[r.Name] = a
			}
			a.val += train.Evaluate(h, va).Acc / float64(seeds)
			a.test += train.Evaluate(h, te).Acc / float64(seeds)
			a.epochs += float64(len(ep)) / float64(seeds)
		}
	}
	t.Logf("pipelines: original (its 3, best by val) %.4f, ours without refit %.4f, ours (default config) %.4f", origPipe, ourNoRefit, ourPipe)
	for _, r := range recipes {
		a := res[r.Name]
		t.Logf("%-18s val %.4f test %.4f epochs %.1f", r.Name, a.val, a.test, a.epochs)
	}
}
