package report

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ClassRow is one class of the per-class report.
type ClassRow struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1-score"`
	Support   int     `json:"support"`
}

// Summary is the per-class report of a confusion matrix, like
// scikit-learn's classification_report (with zero_division=0).
//
// Accuracy is the trace over Total; the macro averages are unweighted means
// over all classes (including classes with no support, as scikit-learn does
// when given the label list); the weighted averages weight each class by its
// support. Every value is finite: a zero denominator gives 0.
type Summary struct {
	Rows              []ClassRow `json:"rows"`
	Accuracy          float64    `json:"accuracy"`
	MacroPrecision    float64    `json:"macro_precision"`
	MacroRecall       float64    `json:"macro_recall"`
	MacroF1           float64    `json:"macro_f1"`
	WeightedPrecision float64    `json:"weighted_precision"`
	WeightedRecall    float64    `json:"weighted_recall"`
	WeightedF1        float64    `json:"weighted_f1"`
	Total             int        `json:"total"`
}

// CheckConfusion reports whether confusion is a non-empty square matrix of
// non-negative counts with one label per class. ConfusionPNG applies it;
// Summarize tolerates bad input instead (see there).
func CheckConfusion(confusion [][]int, labels []string) error {
	n := len(confusion)
	if n == 0 {
		return errors.New("report: empty confusion matrix")
	}
	for i, row := range confusion {
		if len(row) != n {
			return fmt.Errorf("report: confusion matrix is not square: row %d has %d entries, want %d", i, len(row), n)
		}
		for j, v := range row {
			if v < 0 {
				return fmt.Errorf("report: negative count %d at [%d][%d]", v, i, j)
			}
		}
	}
	if len(labels) != n {
		return fmt.Errorf("report: %d labels for a %d×%d confusion matrix", len(labels), n, n)
	}
	return nil
}

// Summarize computes per-class precision, recall, F1 and support from a
// confusion matrix indexed [true][predicted], plus accuracy and the macro
// and weighted averages. Zero divisions give 0, never NaN.
//
// It never panics: the class count is len(confusion); missing entries of a
// short row count as 0, extra entries are ignored, negative counts count as 0,
// and a missing label is named "class <i>". Use CheckConfusion to reject
// such input instead.
func Summarize(confusion [][]int, labels []string) Summary {
	n := len(confusion)
	at := func(i, j int) int {
		if j < len(confusion[i]) && confusion[i][j] > 0 {
			return confusion[i][j]
		}
		return 0
	}
	rowSum := make([]int, n)
	colSum := make([]int, n)
	var s Summary
	trace := 0
	for i := range n {
		for j := range n {
			v := at(i, j)
			rowSum[i] += v
			colSum[j] += v
			s.Total += v
		}
		trace += at(i, i)
	}
	s.Rows = make([]ClassRow, n)
	for i := range n {
		tp := float64(at(i, i))
		r := ClassRow{
			Label:     fmt.Sprintf("class %d", i),
			Precision: ratio(tp, float64(colSum[i])),
			Recall:    ratio(tp, float64(rowSum[i])),
			Support:   rowSum[i],
		}
		if i < len(labels) {
			r.Label = labels[i]
		}
		r.F1 = ratio(2*r.Precision*r.Recall, r.Precision+r.Recall)
		s.Rows[i] = r

		s.MacroPrecision += r.Precision
		s.MacroRecall += r.Recall
		s.MacroF1 += r.F1
		w := float64(r.Support)
		s.WeightedPrecision += w * r.Precision
		s.WeightedRecall += w * r.Recall
		s.WeightedF1 += w * r.F1
	}
	s.Accuracy = ratio(float64(trace), float64(s.Total))
	s.MacroPrecision = ratio(s.MacroPrecision, float64(n))
	s.MacroRecall = ratio(s.MacroRecall, float64(n))
	s.MacroF1 = ratio(s.MacroF1, float64(n))
	s.WeightedPrecision = ratio(s.WeightedPrecision, float64(s.Total))
	s.WeightedRecall = ratio(s.WeightedRecall, float64(s.Total))
	s.WeightedF1 = ratio(s.WeightedF1, float64(s.Total))
	return s
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// TextDigits is the number of decimals Text prints.
const TextDigits = 4

// Text formats the summary like scikit-learn's classification_report
// (digits=4): a header, one line per class, a blank line, then the accuracy,
// macro avg and weighted avg lines.
func (s Summary) Text() string {
	const lastLine = "weighted avg"
	width := len(lastLine)
	for _, r := range s.Rows {
		width = max(width, utf8.RuneCountInString(r.Label))
	}
	d := TextDigits
	var b strings.Builder
	// Header: right-aligned column names, 10 wide except the first column.
	fmt.Fprintf(&b, "%*s %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score", "support")
	for _, r := range s.Rows {
		fmt.Fprintf(&b, "%*s %9.*f %9.*f %9.*f %9d\n", width, r.Label, d, r.Precision, d, r.Recall, d, r.F1, r.Support)
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "%*s %9s %9s %9.*f %9d\n", width, "accuracy", "", "", d, s.Accuracy, s.Total)
	fmt.Fprintf(&b, "%*s %9.*f %9.*f %9.*f %9d\n", width, "macro avg", d, s.MacroPrecision, d, s.MacroRecall, d, s.MacroF1, s.Total)
	fmt.Fprintf(&b, "%*s %9.*f %9.*f %9.*f %9d\n", width, lastLine, d, s.WeightedPrecision, d, s.WeightedRecall, d, s.WeightedF1, s.Total)
	return b.String()
}
