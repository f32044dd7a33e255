package ab

import (
	"math"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The intervals and tests below were computed by hand from the formulas
// (Wilson's score interval, the pooled two-proportion z-test).
func TestWilson(t *testing.T) {
	for _, c := range []struct {
		hits, n   int
		low, high float64
	}{
		{8, 10, 0.4902, 0.9433},
		{50, 100, 0.4038, 0.5962},
		{0, 10, 0, 0.2775},
		{10, 10, 0.7225, 1},
		{1, 1, 0.2065, 1},
	} {
		p := Wilson(c.hits, c.n)
		if !near(p.Low, c.low, 1e-4) || !near(p.High, c.high, 1e-4) || p.Rate != float64(c.hits)/float64(c.n) {
			t.Errorf("Wilson(%d, %d) = %+v, want [%.4f, %.4f]", c.hits, c.n, p, c.low, c.high)
		}
	}
}

func TestTwoProportion(t *testing.T) {
	for _, c := range []struct {
		x1, n1, x2, n2 int
		z, p           float64
		significant    bool
		rough          bool
		verdict        string
	}{
		{45, 100, 30, 100, 2.1909, 0.02846, true, false, "significantly better than the champion at 5% (p = 0.0285)"},
		{30, 100, 45, 100, -2.1909, 0.02846, true, false, "significantly worse than the champion at 5% (p = 0.0285)"},
		{52, 100, 50, 100, 0.2829, 0.7773, false, false, "not significant at 5% (p = 0.777)"},
		{9, 10, 5, 10, 1.9518, 0.05096, false, true, "not significant at 5% (p = 0.051); few samples, the test is rough"},
		{0, 10, 0, 10, 0, 1, false, true, "not significant at 5% (p = 1); few samples, the test is rough"},
		{10, 10, 10, 10, 0, 1, false, true, "not significant at 5% (p = 1); few samples, the test is rough"},
	} {
		got := TwoProportion(c.x1, c.n1, c.x2, c.n2)
		if !near(got.Z, c.z, 1e-4) || !near(got.PValue, c.p, 1e-4) || got.Significant != c.significant ||
			got.Rough != c.rough || got.verdict() != c.verdict {
			t.Errorf("TwoProportion(%d/%d, %d/%d) = %+v %q, want z %.4f p %.4f %q", c.x1, c.n1, c.x2, c.n2, got,
				got.verdict(), c.z, c.p, c.verdict)
		}
	}
}

func TestMcNemar(t *testing.T) {
	for _, c := range []struct {
		b, c int
		p    float64
	}{
		{10, 2, 158.0 / 4096},
		{2, 10, 158.0 / 4096},
		{5, 5, 1},
		{0, 0, 1},
		{3, 0, 0.25},
		{6, 0, 2.0 / 64},
		{20, 5, 2 * 68406.0 / 33554432},
		{1, 0, 1},
	} {
		if got := McNemar(c.b, c.c); !near(got, c.p, 1e-9) {
			t.Errorf("McNemar(%d, %d) = %v, want %v", c.b, c.c, got, c.p)
		}
	}
	for _, c := range []struct {
		n, b, c int
		verdict string
	}{
		{12, 10, 2, "on the same requests, significantly better than the champion at 5% (right on 10 it missed, wrong on 2 it got; p = 0.0386)"},
		{12, 2, 10, "on the same requests, significantly worse than the champion at 5% (right on 2 it missed, wrong on 10 it got; p = 0.0386)"},
		{20, 5, 5, "on the same requests, not significant at 5% (right on 5 it missed, wrong on 5 it got; p = 1)"},
		{1, 0, 0, "on 1 request both answered, they are right on the same ones"},
	} {
		if p := pairedOf(c.n, c.b, c.c); p.Verdict != c.verdict || p.Significant != (p.PValue < 0.05) {
			t.Errorf("%+v, want %q", p, c.verdict)
		}
	}
}

// A small log: v1 answers r1..r4, v2 answers r5, r6 and shadows r1, r2.
const smallLog = `{"kind":"prediction","request_id":"r1","time":"2026-12-01T00:00:00Z","model":"m","version":"1","top_k":[{"label":"cat","index":0,"probability":0.9}],"latency_ms":2}
{"kind":"prediction","request_id":"r1","time":"2026-12-01T00:00:00Z","model":"m","version":"2","shadow":true,"top_k":[{"label":"cat","index":0,"probability":0.8}],"latency_ms":4}
{"kind":"prediction","request_id":"r2","time":"2026-12-01T00:00:01Z","model":"m","version":"1","top_k":[{"label":"cat","index":0,"probability":0.7}],"latency_ms":2}
{"kind":"prediction","request_id":"r2","time":"2026-12-01T00:00:01Z","model":"m","version":"2","shadow":true,"top_k":[{"label":"dog","index":1,"probability":0.6}],"latency_ms":4}
{"kind":"prediction","request_id":"r3","time":"2026-12-01T00:00:02Z","model":"m","version":"1","top_k":[{"label":"dog","index":1,"probability":0.5}],"latency_ms":2}
{"kind":"prediction","request_id":"r4","time":"2026-12-01T00:00:03Z","model":"m","version":"1","top_k":[{"label":"dog","index":1,"probability":0.5}],"latency_ms":2}
{"kind":"prediction","request_id":"r5","time":"2026-12-01T00:00:04Z","model":"m","version":"2","top_k":[{"label":"cat","index":0,"probability":1}],"latency_ms":4}
{"kind":"prediction","request_id":"r6","time":"2026-12-01T00:00:05Z","model":"m","version":"2","top_k":[{"label":"dog","index":1,"probability":0.6}],"latency_ms":4}
{"kind":"feedback","request_id":"r1","time":"2026-12-01T00:01:00Z","label":"cat"}
{"kind":"feedback","request_id":"r2","time":"2026-12-01T00:01:00Z","label":"dog"}
{"kind":"feedback","request_id":"r3","time":"2026-12-01T00:01:00Z","label":"cat"}
{"kind":"feedback","request_id":"r5","time":"2026-12-01T00:01:00Z","label":"cat"}
{"kind":"feedback","request_id":"r5","time":"2026-12-01T00:02:00Z","label":"dog"}
not json
{"kind":"prediction","request_id":"r7","model":"m","vers`

func readString(t *testing.T, s string) *Entries {
	t.Helper()
	es := &Entries{}
	if err := es.read(strings.NewReader(s)); err != nil {
		t.Fatal(err)
	}
	return es
}

func TestCompare(t *testing.T) {
	es := readString(t, smallLog)
	rep, err := es.Compare("")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Champion != "m/1" || rep.Records != 8 || rep.Feedback != 4 || rep.Skipped != 2 || len(rep.Versions) != 2 {
		t.Fatalf("%+v", rep)
	}
	v1, v2 := rep.Versions[0], rep.Versions[1]
	// v1: 4 of the 6 answers; top-1 right on r1 only of r1, r2, r3.
	if !v1.Champion || v1.Requests != 4 || v1.Shadow != 0 || !near(v1.Share, 4.0/6, 1e-12) ||
		!near(v1.MeanConfidence, (0.9+0.7+0.5+0.5)/4, 1e-6) || v1.MeanLatencyMS != 2 ||
		v1.Agreement != nil || v1.Accuracy == nil || v1.Accuracy.Hits != 1 || v1.Accuracy.N != 3 || v1.Test != nil || v1.Verdict != "" {
		t.Errorf("champion %+v", v1)
	}
	// v2: agrees on r1, not r2; right on r1 and r2, wrong on r5 (its last feedback is dog).
	if v2.Champion || v2.Requests != 2 || v2.Shadow != 2 || !near(v2.Share, 2.0/6, 1e-12) ||
		!near(v2.MeanConfidence, (0.8+0.6+1+0.6)/4, 1e-6) || v2.MeanLatencyMS != 4 ||
		v2.Agreement == nil || v2.Agreement.Hits != 1 || v2.Agreement.N != 2 ||
		v2.Accuracy == nil || v2.Accuracy.Hits != 2 || v2.Accuracy.N != 3 {
		t.Errorf("challenger %+v", v2)
	}
	if v2.Test == nil || !near(v2.Test.Z, 0.8165, 1e-4) || !near(v2.Test.PValue, 0.4142, 1e-4) ||
		v2.Verdict != "not significant at 5% (p = 0.414); few samples, the test is rough" {
		t.Errorf("test %+v %q", v2.Test, v2.Verdict)
	}
	// Paired: r1 both right, r2 only v2 right.
	if p := v2.Paired; p == nil || p.N != 2 || p.ChallengerOnly != 1 || p.ChampionOnly != 0 || p.PValue != 1 || v1.Paired != nil {
		t.Errorf("paired %+v", p)
	}

	// The other way round: v2 as champion.
	rep, err = es.Compare("2")
	if err != nil || rep.Champion != "m/2" || !rep.Versions[0].Champion || rep.Versions[1].Key != "m/1" ||
		rep.Versions[1].Agreement.N != 2 || !near(rep.Versions[1].Test.Z, -0.8165, 1e-4) {
		t.Errorf("%+v %v", rep, err)
	}
	if rep, err := es.Compare("m/1"); err != nil || rep.Champion != "m/1" {
		t.Errorf("%+v %v", rep, err)
	}
	if _, err := es.Compare("9"); err == nil || !strings.Contains(err.Error(), "no such version") {
		t.Errorf("unknown champion: %v", err)
	}
}

func TestCompareEdges(t *testing.T) {
	// Two models with a version 1: the bare version is ambiguous.
	two := readString(t, `{"kind":"prediction","request_id":"a","model":"x","version":"1","top_k":[{"label":"cat","index":0,"probability":0.5}]}
{"kind":"prediction","request_id":"b","model":"y","version":"1","top_k":[{"label":"cat","index":0,"probability":0.5}]}
`)
	if _, err := two.Compare("1"); err == nil || !strings.Contains(err.Error(), "MODEL/VERSION") {
		t.Errorf("ambiguous: %v", err)
	}
	rep, err := two.Compare("")
	if err != nil || rep.Champion != "x/1" || rep.Versions[1].Verdict != "no feedback for this version yet" {
		t.Errorf("tie: %+v %v", rep, err)
	}
	empty := readString(t, "")
	if rep, err := empty.Compare(""); err != nil || len(rep.Versions) != 0 || rep.Versions == nil {
		t.Errorf("empty: %+v %v", rep, err)
	}
	if _, err := empty.Compare("1"); err == nil {
		t.Error("a champion in an empty log")
	}
	// Feedback for the challenger's requests only.
	one := readString(t, `{"kind":"prediction","request_id":"a","model":"x","version":"1","top_k":[{"label":"cat","index":0,"probability":0.5}]}
{"kind":"prediction","request_id":"a","model":"x","version":"1","top_k":[{"label":"cat","index":0,"probability":0.5}]}
{"kind":"prediction","request_id":"b","model":"x","version":"2","top_k":[{"label":"cat","index":0,"probability":0.5}]}
{"kind":"feedback","request_id":"b","label":"cat"}
`)
	rep, err = one.Compare("")
	if err != nil || rep.Versions[1].Verdict != "no feedback for the champion yet" || rep.Versions[1].Accuracy.N != 1 {
		t.Errorf("%+v %v", rep, err)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 requests", 1: "1 request", 2: "2 requests"} {
		if got := plural(n, "request"); got != want {
			t.Errorf("plural(%d) = %q", n, got)
		}
	}
}

func TestWriteText(t *testing.T) {
	rep, err := readString(t, smallLog).Compare("")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"8 predictions, 4 requests with feedback, 2 unreadable lines skipped",
		"m/1      champion    4         66.7%",
		"50.0% of 2",
		"33.3% [6.1, 79.2] of 3",
		"m/2 against m/1: not significant at 5% (p = 0.414)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
