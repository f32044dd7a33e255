package dataset

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Split divides samples into train and validation sets, stratified by label:
// each class contributes round(valFrac × its count) samples to validation
// (at least one when it has two or more). The split depends only on the
// samples' IDs, labels and the seed, not on their order, so it is the same
// on every machine and every run.
func Split(samples []Sample, valFrac float64, seed uint64) (train, val []Sample) {
	byClass := map[int][]Sample{}
	for _, s := range samples {
		byClass[s.Label] = append(byClass[s.Label], s)
	}
	labels := make([]int, 0, len(byClass))
	for l := range byClass {
		labels = append(labels, l)
	}
	sort.Ints(labels)
	for _, l := range labels {
		c := byClass[l]
		sort.Slice(c, func(i, j int) bool { return c[i].ID < c[j].ID || (c[i].ID == c[j].ID && c[i].Path < c[j].Path) })
		rng := rand.New(rand.NewPCG(seed, uint64(l)))
		rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		n := int(math.Round(valFrac * float64(len(c))))
		if n == 0 && valFrac > 0 && len(c) >= 2 {
			n = 1
		}
		if n >= len(c) {
			n = len(c) - 1
		}
		val = append(val, c[:n]...)
		train = append(train, c[n:]...)
	}
	return train, val
}
