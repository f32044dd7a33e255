package quantize

import (
	"math"
	"testing"
)

func TestActivationParams(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float32
		want   Params
	}{
		{0, 6, Params{6.0 / 255, 0}},             // ReLU6: zero point 0, 6 exact
		{-1, 3, Params{4.0 / 255, 64}},           // zero point 63.75 rounded
		{1, 2, Params{2.0 / 255, 0}},             // widened to hold 0
		{-3, -1, Params{3.0 / 255, 255}},         // all negative
		{0, 0, Params{1, 0}},                     // constant zero
		{-2.118, 2.64, Params{4.758 / 255, 114}}, // the normalised image
	} {
		got := ActivationParams(tc.lo, tc.hi)
		if math.Abs(float64(got.Scale-tc.want.Scale)) > 1e-6 || got.ZeroPoint != tc.want.ZeroPoint {
			t.Errorf("ActivationParams(%v, %v) = %+v, want %+v", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestQuantizeWeight(t *testing.T) {
	// Two output channels of 2x1 values: per channel each gets its own scale.
	w := []float32{1, -0.25, 0.015, -0.02}
	q, s := quantizeWeight(w, []int64{2, 2}, 0, 127)
	if len(s) != 2 || s[0] != 1.0/127 || s[1] != float32(0.02/127) || q[0] != 127 || q[1] != -32 || q[2] != 95 || q[3] != -127 {
		t.Errorf("per channel: q %v s %v", q, s)
	}
	q, s = quantizeWeight(w, []int64{2, 2}, -1, 64)
	if len(s) != 1 || q[0] != 64 || q[1] != -16 || q[2] != 1 || q[3] != -1 {
		t.Errorf("per tensor, reduced: q %v s %v", q, s)
	}
	// Axis 1 (a Gemm's B without transB): channels are columns.
	q, s = quantizeWeight([]float32{1, 0.1, -1, 0.2}, []int64{2, 2}, 1, 127)
	if s[0] != 1.0/127 || s[1] != float32(0.2/127) || q[1] != 64 || q[3] != 127 {
		t.Errorf("axis 1: q %v s %v", q, s)
	}
	// An all-zero channel gets scale 1, not a division by zero.
	_, s = quantizeWeight([]float32{0, 0}, []int64{1, 2}, 0, 127)
	if s[0] != 1 {
		t.Errorf("zero channel scale %v", s)
	}
	b, bs := quantizeBias([]float32{0.5, -1}, 0.1, []float32{0.01, 0.02})
	if b[0] != 500 || b[1] != -500 || math.Abs(float64(bs[1]-0.002)) > 1e-9 {
		t.Errorf("bias %v scales %v", b, bs)
	}
}

func TestStats(t *testing.T) {
	// 100000 values of an exponential distribution (a long thin tail, as
	// activations have): minmax keeps the largest, percentile and entropy
	// clip the tail.
	v := make([]float32, 100000)
	for i := range v {
		v[i] = float32(-math.Log(1 - (float64(i)+0.5)/float64(len(v))))
	}
	top := v[len(v)-1] // 12.2
	for _, tc := range []struct {
		m      Method
		lo, hi float32 // bounds on the calibrated hi
	}{
		{MinMax, top, top},
		{Percentile, 9.1, 9.4}, // -ln(1e-4) = 9.21
		{Entropy, 2, top - 1},
	} {
		s := newStats(tc.m)
		// A small batch first, so that the histogram must double its range.
		if err := s.Add(v[:10]); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(v[10:]); err != nil {
			t.Fatal(err)
		}
		lo, hi := s.Range(tc.m, 99.99)
		if lo != v[0] || hi < tc.lo || hi > tc.hi {
			t.Errorf("%s: range [%v, %v], want hi in [%v, %v]", tc.m, lo, hi, tc.lo, tc.hi)
		}
		t.Logf("%s: [%v, %v]", tc.m, lo, hi)
	}
	if err := newStats(MinMax).Add([]float32{float32(math.NaN())}); err == nil {
		t.Error("a NaN was accepted")
	}
	if _, err := ParseMethod("median"); err == nil {
		t.Error("median accepted")
	}
}

func TestSpreadAndDigest(t *testing.T) {
	got := Spread([]string{"d", "a", "c", "b", "e", "f"}, 3)
	if len(got) != 3 || got[0] != "a" || got[1] != "c" || got[2] != "e" {
		t.Errorf("Spread: %v", got)
	}
	if len(Spread([]string{"b", "a"}, 5)) != 2 {
		t.Error("Spread of fewer than n")
	}
	if Digest([]string{"x", "y"}) != Digest([]string{"y", "x"}) || Digest([]string{"x"}) == Digest([]string{"y"}) {
		t.Error("Digest depends on order, or not on content")
	}
}
