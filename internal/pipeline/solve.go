package pipeline

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/train"
)

// fitted is one recipe trained on one training set.
type fitted struct {
	head      *train.Head
	epochs    []train.Epoch // adam
	bestEpoch int           // adam: the epoch whose weights head has
	l2        float64       // lbfgs: the λ of head
	l2Val     []train.Eval  // lbfgs with validation: each λ's, in grid order
	info      train.LogRegInfo
}

// fit trains recipe e on tr, validating on val; an empty val is a refit
// (for lbfgs the grid must then hold one λ).
func fit(e Recipe, seed uint64, tr, val data, classes int, onEpoch func(train.Epoch)) (fitted, error) {
	if e.solver() == SolverLBFGS {
		return fitLBFGS(e.L2, tr, val, classes)
	}
	h, ep, err := train.Train(e.trainConfig(seed), tr, val, classes, onEpoch)
	if err != nil {
		return fitted{epochs: ep}, err
	}
	return fitted{head: h, epochs: ep, bestEpoch: bestEpoch(ep, e.Patience > 0)}, nil
}

// pathOrder is the grid's indices from the largest λ to the smallest, the
// order of a regularisation path: each solve starts from the previous
// (more regularised, quickly solved) answer.
func pathOrder(grid []float64) []int {
	idx := make([]int, len(grid))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return grid[idx[a]] > grid[idx[b]] })
	return idx
}

// solvePath solves the head for every λ of grid on tr and calls got with
// each (grid index, head).
func solvePath(grid []float64, tr data, classes int, got func(i int, h *train.Head, info train.LogRegInfo)) error {
	var warm *train.Head
	for _, i := range pathOrder(grid) {
		h, info, err := train.FitLogReg(train.LogReg{L2: grid[i]}, tr, classes, warm)
		if err != nil {
			return err
		}
		got(i, h, info)
		warm = h
	}
	return nil
}

// fitLBFGS solves the head for each λ and keeps the best on val (accuracy,
// then loss, then the larger λ).
func fitLBFGS(grid []float64, tr, val data, classes int) (fitted, error) {
	if val.N() == 0 {
		if len(grid) != 1 {
			return fitted{}, fmt.Errorf("lbfgs: %d L2 strengths and no validation data to choose one", len(grid))
		}
		h, info, err := train.FitLogReg(train.LogReg{L2: grid[0]}, tr, classes, nil)
		return fitted{head: h, l2: grid[0], info: info}, err
	}
	f := fitted{l2Val: make([]train.Eval, len(grid))}
	best := -1
	err := solvePath(grid, tr, classes, func(i int, h *train.Head, info train.LogRegInfo) {
		ev := train.Evaluate(h, val)
		f.l2Val[i] = ev
		if best < 0 || betterScore(ev.Acc, ev.Loss, grid[i], f.l2Val[best].Acc, f.l2Val[best].Loss, grid[best]) {
			best, f.head, f.l2, f.info = i, h, grid[i], info
		}
	})
	return f, err
}

// betterScore orders candidates by accuracy, then loss, then the larger λ
// (the simpler model).
func betterScore(acc, loss, l2, bAcc, bLoss, bL2 float64) bool {
	if acc != bAcc {
		return acc > bAcc
	}
	if loss != bLoss {
		return loss < bLoss
	}
	return l2 > bL2
}

// kFolds assigns each sample a fold in [0, k): within each class, in a
// seeded shuffle of the class's images, round robin from a fold that
// advances from class to class, so folds are stratified and of nearly equal
// sizes.
func kFolds(samples []dataset.Sample, k int, seed uint64) []int {
	byClass := map[int][]int{}
	for i, s := range samples {
		byClass[s.Label] = append(byClass[s.Label], i)
	}
	labels := make([]int, 0, len(byClass))
	for l := range byClass {
		labels = append(labels, l)
	}
	sort.Ints(labels)
	fold := make([]int, len(samples))
	next := 0
	for _, l := range labels {
		idx := byClass[l]
		sort.Slice(idx, func(a, b int) bool {
			sa, sb := samples[idx[a]], samples[idx[b]]
			return sa.ID < sb.ID || sa.ID == sb.ID && sa.Path < sb.Path
		})
		r := rand.New(rand.NewPCG(seed^0x6b666f6c64, uint64(l))) // "kfold"
		r.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		for _, i := range idx {
			fold[i] = next
			next = (next + 1) % k
		}
	}
	return fold
}

// cvFolds is k cross-validation folds of the features of one set of images:
// fold f trains on the other folds' images in every training view and
// validates on its own in the original view.
type cvFolds struct {
	k     int
	fold  []int // per image
	rows  *viewRows
	views []features.View
}

func (c cvFolds) split(f int, views []features.View) (tr, val data) {
	var in, out []int
	for i, g := range c.fold {
		if g == f {
			out = append(out, i)
		} else {
			in = append(in, i)
		}
	}
	return c.rows.gather(in, views), c.rows.gather(out, []features.View{features.Original})
}

// cvResult is one recipe's cross-validation.
type cvResult struct {
	acc, loss float64   // the chosen candidate's mean over the folds
	foldAcc   []float64 // the chosen candidate's per fold
	l2        float64   // lbfgs: the chosen λ
	gridAcc   []float64 // lbfgs: each λ's mean accuracy, in grid order
	gridLoss  []float64
	epochs    int // adam: the refit's epochs (the folds' mean best epoch)
}

// crossValidate scores recipe e by k-fold cross-validation: adam trains on
// each fold (early stopping on the fold's images), lbfgs solves its whole
// grid on each fold and keeps the λ of the best mean accuracy (then loss,
// then the larger λ).
func crossValidate(e Recipe, seed uint64, cv cvFolds, classes int) (cvResult, error) {
	views := e.trainViews()
	if e.solver() == SolverLBFGS {
		n := len(e.L2)
		acc := make([][]float64, n) // [λ][fold]
		loss := make([]float64, n)
		for f := range cv.k {
			tr, val := cv.split(f, views)
			if tr.N() == 0 || val.N() == 0 {
				return cvResult{}, fmt.Errorf("fold %d of %d is empty", f+1, cv.k)
			}
			err := solvePath(e.L2, tr, classes, func(i int, h *train.Head, _ train.LogRegInfo) {
				ev := train.Evaluate(h, val)
				acc[i] = append(acc[i], ev.Acc)
				loss[i] += ev.Loss / float64(cv.k)
			})
			if err != nil {
				return cvResult{}, fmt.Errorf("fold %d: %w", f+1, err)
			}
		}
		r := cvResult{gridAcc: make([]float64, n), gridLoss: loss}
		best := -1
		for i := range n {
			r.gridAcc[i] = mean(acc[i])
			if best < 0 || betterScore(r.gridAcc[i], loss[i], e.L2[i], r.gridAcc[best], loss[best], e.L2[best]) {
				best = i
			}
		}
		r.acc, r.loss, r.foldAcc, r.l2 = r.gridAcc[best], loss[best], acc[best], e.L2[best]
		return r, nil
	}
	var r cvResult
	var epochs float64
	for f := range cv.k {
		tr, val := cv.split(f, views)
		if tr.N() == 0 || val.N() == 0 {
			return cvResult{}, fmt.Errorf("fold %d of %d is empty", f+1, cv.k)
		}
		ft, err := fit(e, seed+uint64(f), tr, val, classes, nil)
		if err != nil {
			return cvResult{}, fmt.Errorf("fold %d: %w", f+1, err)
		}
		ev := train.Evaluate(ft.head, val)
		r.foldAcc = append(r.foldAcc, ev.Acc)
		r.loss += ev.Loss / float64(cv.k)
		epochs += float64(ft.bestEpoch) / float64(cv.k)
	}
	r.acc = mean(r.foldAcc)
	r.epochs = max(int(math.Round(epochs)), 1)
	return r, nil
}

// refitRecipe is recipe e as its refit on all the data trains it: the
// chosen λ alone, or the chosen number of epochs without early stopping.
func refitRecipe(e Recipe, l2 float64, epochs int) Recipe {
	if e.solver() == SolverLBFGS {
		e.L2 = []float64{l2}
		return e
	}
	e.Epochs = max(epochs, 1)
	e.Patience = 0
	return e
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// viewRows is the features of a list of images in several views, with
// their labels, as Compute returned them.
type viewRows struct {
	fr     *features.Result
	labels []int32
}

func newViewRows(fr *features.Result, samples []dataset.Sample) *viewRows {
	v := &viewRows{fr: fr, labels: make([]int32, len(samples))}
	for i, s := range samples {
		v.labels[i] = int32(s.Label)
	}
	return v
}

// gather returns the rows of images idx in the given views, view after
// view, skipping the images that could not be decoded.
func (v *viewRows) gather(idx []int, views []features.View) data {
	d := data{D: v.fr.Dim}
	dim := v.fr.Dim
	for _, view := range views {
		x := v.fr.X[view]
		for _, i := range idx {
			if !v.fr.OK[i] {
				continue
			}
			d.X = append(d.X, x[i*dim:(i+1)*dim]...)
			d.Y = append(d.Y, v.labels[i])
		}
	}
	return d
}

// span is the indices [from, to).
func span(from, to int) []int {
	idx := make([]int, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	return idx
}

// viewsOf is the union of the recipes' training views, Original first.
func viewsOf(recipes []Recipe) []features.View {
	views := []features.View{features.Original}
	for _, e := range recipes {
		for _, v := range e.trainViews() {
			if !slices.Contains(views, v) {
				views = append(views, v)
			}
		}
	}
	return views
}

// minPerClass is the smallest number of samples of any of the classes.
func minPerClass(samples []dataset.Sample, classes int) int {
	n := make([]int, classes)
	for _, s := range samples {
		if s.Label >= 0 && s.Label < classes {
			n[s.Label]++
		}
	}
	return slices.Min(n)
}

var errNoFolds = errors.New("cross-validation needs at least 2 images in trainval")
