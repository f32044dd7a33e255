package quantize

import (
	"fmt"
	"math"
)

// Method is how an activation's range is chosen from its calibration values.
type Method string

// The calibration methods.
const (
	// MinMax takes the smallest and largest values seen.
	MinMax Method = "minmax"
	// Percentile clips |x| at a percentile of its distribution
	// (Options.Percentile, default 99.999), dropping rare outliers.
	Percentile Method = "percentile"
	// Entropy clips |x| at the threshold whose quantized distribution is
	// closest (Kullback-Leibler) to the float one, as TensorRT's calibrator.
	Entropy Method = "entropy"
)

// ParseMethod checks a method name.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MinMax, Percentile, Entropy:
		return m, nil
	}
	return "", fmt.Errorf("unknown calibration method %q (want minmax, percentile or entropy)", s)
}

// histBins is the resolution of the |x| histograms.
const histBins = 2048

// Stats accumulate one activation's values over the calibration images: its
// extremes, and for the histogram methods a histogram of |x| whose bin width
// doubles (merging pairs of bins) whenever a larger value comes.
type Stats struct {
	Min, Max float32
	Count    int64
	hist     []int64 // nil for MinMax; exact zeros are not in it
	zeros    int64
	width    float64 // of a bin
}

func newStats(m Method) *Stats {
	s := &Stats{Min: float32(math.Inf(1)), Max: float32(math.Inf(-1))}
	if m != MinMax {
		s.hist = make([]int64, histBins)
	}
	return s
}

// Add accumulates values. NaNs are refused: a model that computes them
// cannot be calibrated.
func (s *Stats) Add(v []float32) error {
	lo, hi := s.Min, s.Max
	absmax := 0.0
	for _, x := range v {
		if x != x {
			return fmt.Errorf("NaN")
		}
		lo, hi = min(lo, x), max(hi, x)
		absmax = max(absmax, math.Abs(float64(x)))
	}
	if math.IsInf(absmax, 0) {
		return fmt.Errorf("infinite value")
	}
	s.Min, s.Max = lo, hi
	s.Count += int64(len(v))
	if s.hist == nil || absmax == 0 {
		if s.hist != nil {
			s.zeros += int64(len(v))
		}
		return nil
	}
	if s.width == 0 {
		s.width = absmax / histBins
	}
	for absmax >= s.width*histBins {
		for i := 0; i < histBins/2; i++ {
			s.hist[i] = s.hist[2*i] + s.hist[2*i+1]
		}
		clear(s.hist[histBins/2:])
		s.width *= 2
	}
	inv := 1 / s.width
	for _, x := range v {
		if x == 0 { // exact in any quantization: kept out of the histogram
			s.zeros++
			continue
		}
		b := int(math.Abs(float64(x)) * inv)
		if b >= histBins {
			b = histBins - 1
		}
		s.hist[b]++
	}
	return nil
}

// Range is the calibrated [lo, hi] of the activation by method.
func (s *Stats) Range(m Method, percentile float64) (lo, hi float32) {
	if s.Count == 0 {
		return 0, 0
	}
	if m == MinMax || s.width == 0 {
		return s.Min, s.Max
	}
	var t float64
	switch m {
	case Percentile:
		t = s.percentile(percentile)
	default:
		levels := 128 // a signed range: about half of the 255 steps each side
		if s.Min >= 0 {
			levels = 255
		}
		t = s.entropy(levels)
	}
	return max(s.Min, float32(-t)), min(s.Max, float32(t))
}

func (s *Stats) percentile(p float64) float64 {
	total := s.zeros
	for _, c := range s.hist {
		total += c
	}
	want := int64(math.Ceil(float64(total) * p / 100))
	sum := s.zeros
	for i, c := range s.hist {
		sum += c
		if sum >= want {
			return float64(i+1) * s.width
		}
	}
	return float64(len(s.hist)) * s.width
}

// entropy returns the |x| threshold minimising KL(P‖Q), P the histogram of
// the non-zero values (zero is exact whatever the scale, and the spike of
// ReLU's zeros would otherwise pull the threshold down) clipped at the
// threshold (the mass beyond it added to its last bin), and Q that
// histogram quantized to levels steps and expanded back (each step's mass
// spread evenly over its non-empty bins).
func (s *Stats) entropy(levels int) float64 {
	h := s.hist
	last := len(h)
	for last > 0 && h[last-1] == 0 {
		last--
	}
	if last <= levels {
		return float64(last) * s.width
	}
	best, bestKL := last, math.Inf(1)
	p := make([]float64, last)
	q := make([]float64, last)
	// Thresholds from levels bins up to every bin; the mass beyond i.
	tail := make([]int64, last+1)
	for i := last - 1; i >= 0; i-- {
		tail[i] = tail[i+1] + h[i]
	}
	for i := levels; i <= last; i++ {
		var psum float64
		for j := 0; j < i; j++ {
			p[j] = float64(h[j])
		}
		p[i-1] += float64(tail[i])
		for j := 0; j < i; j++ {
			psum += p[j]
		}
		for k := 0; k < levels; k++ {
			a, b := k*i/levels, (k+1)*i/levels
			var mass float64
			nonzero := 0
			for j := a; j < b; j++ {
				mass += float64(h[j])
				if h[j] != 0 {
					nonzero++
				}
			}
			for j := a; j < b; j++ {
				q[j] = 0
				if h[j] != 0 {
					q[j] = mass / float64(nonzero)
				}
			}
		}
		var qsum float64
		for j := 0; j < i; j++ {
			qsum += q[j]
		}
		if qsum == 0 || psum == 0 {
			continue
		}
		kl := 0.0
		for j := 0; j < i; j++ {
			if p[j] == 0 {
				continue
			}
			pj := p[j] / psum
			qj := q[j] / qsum
			if qj == 0 {
				qj = 1e-12
			}
			kl += pj * math.Log(pj/qj)
		}
		if kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return float64(best) * s.width
}
