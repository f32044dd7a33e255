package train

import (
	"math"
	"strings"
	"testing"
)

// TestAverageHeads: the averaged head's logits are the mean of the heads'
// logits (to float32 rounding), and mismatched heads are refused.
func TestAverageHeads(t *testing.T) {
	d := randomData(20, 16, 3, 5)
	heads := []*Head{NewHead(16, 3, 1), NewHead(16, 3, 2), NewHead(16, 3, 3)}
	avg, err := AverageHeads(heads)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 20*3)
	avg.Logits(d.X, 20, got)
	want := make([]float64, 20*3)
	one := make([]float32, 20*3)
	for _, h := range heads {
		h.Logits(d.X, 20, one)
		for i, v := range one {
			want[i] += float64(v) / 3
		}
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Fatalf("logit %d: averaged head %v, mean of logits %v", i, got[i], want[i])
		}
	}
	if _, err := AverageHeads(nil); err == nil {
		t.Error("no heads: no error")
	}
	if _, err := AverageHeads([]*Head{NewHead(16, 3, 1), NewHead(8, 3, 1)}); err == nil || !strings.Contains(err.Error(), "head 1 is 8→3") {
		t.Errorf("mismatched heads: %v", err)
	}
}
