package serve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPickSticky: over 10,000 units the shares match the weights within
// binomial error, a unit keeps its model for the same weights, and raising
// a weight only moves units to the raised model.
func TestPickSticky(t *testing.T) {
	const units = 10000
	for _, tt := range []struct {
		name    string
		weights []float64
	}{
		{"90/10", []float64{90, 10}},
		{"50/50", []float64{50, 50}},
		{"70/20/10", []float64{70, 20, 10}},
		{"one out", []float64{1, 0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cands := make([]candidate, len(tt.weights))
			total := 0.0
			for i, w := range tt.weights {
				cands[i] = candidate{name: fmt.Sprint("model-", i), weight: w}
				total += w
			}
			counts := make([]int, len(cands))
			for u := range units {
				unit := fmt.Sprint("user-", u)
				i := pick(cands, unit, 0)
				if j := pick(cands, unit, 0.99); j != i {
					t.Fatalf("unit %s: %d then %d", unit, i, j)
				}
				counts[i]++
			}
			for i, w := range tt.weights {
				p := w / total
				sd := math.Sqrt(units * p * (1 - p))
				if d := math.Abs(float64(counts[i]) - units*p); d > 4*sd+0.5 {
					t.Errorf("model %d: %d units, want %.0f ± %.0f (4 sd)", i, counts[i], units*p, 4*sd)
				}
			}
		})
	}
	// Raising the challenger from 10 to 20 moves units only to it, and about
	// the right number of them.
	before := []candidate{{"champion", 90}, {"challenger", 10}}
	after := []candidate{{"champion", 90}, {"challenger", 20}}
	moved := 0
	for u := range units {
		unit := fmt.Sprint("user-", u)
		a, b := pick(before, unit, 0), pick(after, unit, 0)
		if a == 1 && b != 1 {
			t.Fatalf("unit %s left the raised challenger", unit)
		}
		if a != b {
			moved++
		}
	}
	// Its share goes from 10% to 20/110: about 818 of 10,000 units move.
	want := units * (20.0/110 - 0.1)
	if sd := math.Sqrt(units * 0.08 * 0.92); math.Abs(float64(moved)-want) > 4*sd {
		t.Errorf("%d units moved, want about %.0f", moved, want)
	}
}

// TestPickRandom: without a unit, the choice follows the weights.
func TestPickRandom(t *testing.T) {
	cands := []candidate{{"a", 3}, {"b", 0}, {"c", 1}}
	counts := make([]int, 3)
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		counts[pick(cands, "", r.Float64())]++
	}
	if counts[1] != 0 || math.Abs(float64(counts[0])-7500) > 4*math.Sqrt(10000*.75*.25) {
		t.Errorf("counts %v", counts)
	}
	if pick([]candidate{{"a", 0}}, "", 0.5) != -1 || pick([]candidate{{"a", 0}}, "u", 0) != -1 {
		t.Error("no positive weight: want -1")
	}
	if pick(cands, "", math.Nextafter(1, 0)) != 2 {
		t.Error("r near 1: want the last positive candidate")
	}
}

// TestGuardVerdict: the bounds, each way.
func TestGuardVerdict(t *testing.T) {
	cfg := GuardConfig{Window: 100, MinRequests: 20, MaxErrorDelta: 0.05, LatencyRatio: 2, LatencySlack: 10 * time.Millisecond}
	cfg.setDefaults()
	g := newGuard(cfg, 2)
	ms := time.Millisecond
	for _, tt := range []struct {
		name        string
		champ, chal summary
		want        string
	}{
		{"same", summary{100, 0.01, 20 * ms}, summary{50, 0.02, 25 * ms}, ""},
		{"too few answers", summary{100, 0, 20 * ms}, summary{19, 1, time.Second}, ""},
		{"errors", summary{100, 0.01, 20 * ms}, summary{50, 0.07, 20 * ms}, "error rate"},
		{"errors, champion too fresh", summary{5, 0, 20 * ms}, summary{50, 0.06, 20 * ms}, "error rate"},
		{"slow", summary{100, 0, 20 * ms}, summary{50, 0, 51 * ms}, "p99 latency"},
		{"within the slack", summary{100, 0, 20 * ms}, summary{50, 0, 49 * ms}, ""},
		{"slow, champion too fresh", summary{5, 0, 1 * ms}, summary{50, 0, time.Second}, ""},
	} {
		if got := g.verdict(tt.champ, tt.chal); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	// The window keeps the last answers only, and its p99 is nearest-rank.
	for i := range 150 {
		g.observe(1, i < 50, time.Duration(i)*ms)
	}
	s := g.win[1].summary()
	if s.n != 100 || s.errorRate != 0 || s.p99 != 148*ms {
		t.Errorf("summary %+v", s)
	}
	g.reset(1)
	if s := g.win[1].summary(); s.n != 0 {
		t.Errorf("after reset %+v", s)
	}
}

// TestUnitOf: the unit comes from the split header, else the cookie; an
// over-long one is not sticky; "-" turns the header off.
func TestUnitOf(t *testing.T) {
	s, err := New(Config{Model: "x.onnx", SplitCookie: "uid"})
	if err != nil {
		t.Fatal(err)
	}
	off, err := New(Config{Model: "x.onnx", SplitHeader: "-"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("u", maxUnit+1)
	for _, tt := range []struct {
		s              *Server
		header, cookie string
		want           string
	}{
		{s, "alice", "", "alice"},
		{s, "alice", "bob", "alice"},
		{s, "", "bob", "bob"},
		{s, long, "bob", "bob"},
		{s, "", long, ""},
		{s, "", "", ""},
		{off, "alice", "", ""},
	} {
		r := httptest.NewRequest("POST", "/api/predict", nil)
		if tt.header != "" {
			r.Header.Set(DefaultSplitHeader, tt.header)
		}
		if tt.cookie != "" {
			r.AddCookie(&http.Cookie{Name: "uid", Value: tt.cookie})
		}
		if got := tt.s.unitOf(r); got != tt.want {
			t.Errorf("header %.10q cookie %.10q: %q, want %q", tt.header, tt.cookie, got, tt.want)
		}
	}
}
