package report

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// The hand-made matrix: rows are true classes, columns predictions.
// "bird" is never predicted (column 2 all zero).
var (
	handLabels = []string{"cat", "dog", "bird"}
	handMatrix = [][]int{
		{5, 1, 0},
		{2, 3, 0},
		{1, 1, 0},
	}
)

func TestSummarizeHand(t *testing.T) {
	s := Summarize(handMatrix, handLabels)
	// Column sums 8, 5, 0; row sums (support) 6, 5, 2; total 13; trace 8.
	want := []ClassRow{
		{"cat", 5.0 / 8, 5.0 / 6, 5.0 / 7, 6}, // F1 = 2TP/(2TP+FP+FN) = 10/14
		{"dog", 3.0 / 5, 3.0 / 5, 3.0 / 5, 5},
		{"bird", 0, 0, 0, 2}, // never predicted: precision 0/0 → 0
	}
	if len(s.Rows) != len(want) {
		t.Fatalf("%d rows", len(s.Rows))
	}
	for i, w := range want {
		g := s.Rows[i]
		if g.Label != w.Label || g.Support != w.Support || !near(g.Precision, w.Precision) || !near(g.Recall, w.Recall) || !near(g.F1, w.F1) {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"accuracy", s.Accuracy, 8.0 / 13},
		{"macro precision", s.MacroPrecision, (5.0/8 + 3.0/5) / 3},
		{"macro recall", s.MacroRecall, (5.0/6 + 3.0/5) / 3},
		{"macro F1", s.MacroF1, (5.0/7 + 3.0/5) / 3},
		{"weighted precision", s.WeightedPrecision, (6*5.0/8 + 5*3.0/5) / 13},
		{"weighted recall", s.WeightedRecall, 8.0 / 13},
		{"weighted F1", s.WeightedF1, (6*5.0/7 + 5*3.0/5) / 13},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %.6f, want %.6f", c.name, c.got, c.want)
		}
	}
	if s.Total != 13 {
		t.Errorf("total %d", s.Total)
	}
	// Rounded, these are the values scikit-learn prints for this matrix.
	for name, v := range map[string]float64{"0.6154": s.Accuracy, "0.4381": s.MacroF1, "0.5604": s.WeightedF1} {
		if got := fmt.Sprintf("%.4f", v); got != name {
			t.Errorf("%v formats as %s, want %s", v, got, name)
		}
	}
}

func TestSummarizeZero(t *testing.T) {
	for _, m := range [][][]int{
		{{0, 0}, {0, 0}},
		{},
		nil,
		{{1, 2, 3}, {4}}, // ragged: tolerated
		{{-5, 1}, {1, 2}},
	} {
		s := Summarize(m, []string{"a"})
		all := []float64{s.Accuracy, s.MacroPrecision, s.MacroRecall, s.MacroF1, s.WeightedPrecision, s.WeightedRecall, s.WeightedF1}
		for _, r := range s.Rows {
			all = append(all, r.Precision, r.Recall, r.F1)
		}
		for _, v := range all {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1 {
				t.Errorf("Summarize(%v): value %v", m, v)
			}
		}
		if len(s.Rows) != len(m) {
			t.Errorf("Summarize(%v): %d rows", m, len(s.Rows))
		}
		if len(m) > 1 && s.Rows[1].Label != "class 1" {
			t.Errorf("missing label named %q", s.Rows[1].Label)
		}
		_ = s.Text()
		if _, err := json.Marshal(s); err != nil {
			t.Error(err)
		}
	}
	s := Summarize([][]int{{-5, 1}, {1, 2}}, []string{"a", "b"})
	if s.Total != 4 || s.Rows[0].Support != 1 {
		t.Errorf("negative count not taken as 0: %+v", s)
	}
}

func TestSummaryText(t *testing.T) {
	txt := Summarize(handMatrix, handLabels).Text()
	t.Log("\n" + txt)
	for _, want := range []string{"precision", "recall", "f1-score", "support", "cat", "dog", "bird", "macro avg", "weighted avg"} {
		if !strings.Contains(txt, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	lines := strings.Split(strings.TrimRight(txt, "\n"), "\n")
	var acc string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "accuracy") {
			acc = l
		}
	}
	if f := strings.Fields(acc); len(f) != 3 || f[1] != "0.6154" || f[2] != "13" {
		t.Errorf("accuracy line %q, want accuracy 0.6154 13", acc)
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "cat 0.6250 0.8333 0.7143 6" {
		t.Errorf("cat line %q", lines[2])
	}
	if f := strings.Fields(lines[4]); strings.Join(f, " ") != "bird 0.0000 0.0000 0.0000 2" {
		t.Errorf("bird line %q", lines[4])
	}
	// Columns line up: every non-empty line has the same width.
	width := -1
	for _, l := range lines {
		if l == "" {
			continue
		}
		if width == -1 {
			width = utf8.RuneCountInString(l)
		} else if w := utf8.RuneCountInString(l); w != width {
			t.Errorf("line %q is %d wide, want %d", l, w, width)
		}
	}

	// Long (and non-ASCII) labels widen the first column.
	txt = Summarize(petConfusion(), petLabels).Text()
	for _, l := range petLabels {
		if !strings.Contains(txt, l) {
			t.Errorf("37-class report lacks %q", l)
		}
	}
	lines = strings.Split(strings.TrimRight(Summarize([][]int{{1}}, []string{"Überlänge-Ñandú"}).Text(), "\n"), "\n")
	if utf8.RuneCountInString(lines[0]) != utf8.RuneCountInString(lines[2]) {
		t.Errorf("non-ASCII label misaligns:\n%s", strings.Join(lines, "\n"))
	}
}

func TestSummaryJSON(t *testing.T) {
	b, err := json.Marshal(Summarize(handMatrix, handLabels).Rows[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"label":"cat","precision":0.625,"recall":0.8333333333333334,"f1-score":0.7142857142857143,"support":6}`
	if string(b) != want {
		t.Errorf("json %s, want %s", b, want)
	}
}

func TestCheckConfusion(t *testing.T) {
	if err := CheckConfusion(handMatrix, handLabels); err != nil {
		t.Fatal(err)
	}
	if err := CheckConfusion(handMatrix, handLabels[:2]); err == nil {
		t.Error("label mismatch accepted")
	}
	if err := CheckConfusion([][]int{{1, 2}}, []string{"a"}); err == nil {
		t.Error("non-square accepted")
	}
}
