package ab

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// z95 is the standard normal quantile of 97.5%: a two-sided 95% interval.
const z95 = 1.959963984540054

// Report compares the versions found in a prediction log with the champion.
type Report struct {
	Champion string         `json:"champion"` // the champion's key, MODEL/VERSION
	Records  int            `json:"records"`  // prediction lines
	Feedback int            `json:"feedback"` // requests with a true label
	Skipped  int            `json:"skipped_lines"`
	Dropped  uint64         `json:"dropped,omitempty"` // records the live log could not keep
	Versions []VersionStats `json:"versions"`          // the champion first
}

// VersionStats is one model version's share of the traffic and its quality.
type VersionStats struct {
	Key            string  `json:"key"` // MODEL/VERSION
	Model          string  `json:"model"`
	Version        string  `json:"version"`
	Champion       bool    `json:"champion"`
	Requests       int     `json:"requests"`        // answers returned
	Shadow         int     `json:"shadow_requests"` // shadow answers, never returned
	Share          float64 `json:"traffic_share"`   // of the returned answers
	MeanConfidence float64 `json:"mean_confidence"` // top-1 probability, all answers
	MeanLatencyMS  float64 `json:"mean_latency_ms"`
	// Agreement with the champion's top-1 on the requests both answered
	// (shadowed ones); nil for the champion or when there are none.
	Agreement *Proportion `json:"agreement,omitempty"`
	// Accuracy of the top-1 on the requests with feedback; nil without any.
	Accuracy *Proportion `json:"accuracy,omitempty"`
	// Test of this version's accuracy against the champion's; nil for the
	// champion or when one of them has no feedback.
	Test    *Test  `json:"test,omitempty"`
	Verdict string `json:"verdict,omitempty"` // the test in a sentence (challengers)
	// Paired compares the two on the requests with feedback that both
	// answered (shadow traffic): McNemar's exact test; nil without any.
	Paired *Paired `json:"paired,omitempty"`
}

// Paired is McNemar's exact test on the requests with feedback both
// versions answered: of those where exactly one was right, is either right
// more often than chance says?
type Paired struct {
	N              int     `json:"n"`               // requests with feedback both answered
	ChallengerOnly int     `json:"challenger_only"` // right where the champion was wrong
	ChampionOnly   int     `json:"champion_only"`   // the reverse
	PValue         float64 `json:"p_value"`
	Significant    bool    `json:"significant"` // at 5%
	Verdict        string  `json:"verdict"`
}

// McNemar is the exact two-sided McNemar test of b against c discordant
// pairs: twice the binomial(b+c, 1/2) tail of min(b, c), at most 1.
func McNemar(b, c int) float64 {
	n, k := b+c, min(b, c)
	if n == 0 {
		return 1
	}
	tail := 0.0
	lgn, _ := math.Lgamma(float64(n + 1))
	for i := 0; i <= k; i++ {
		a, _ := math.Lgamma(float64(i + 1))
		d, _ := math.Lgamma(float64(n - i + 1))
		tail += math.Exp(lgn - a - d - float64(n)*math.Ln2)
	}
	return min(1, 2*tail)
}

func pairedOf(n, challengerOnly, championOnly int) *Paired {
	p := &Paired{N: n, ChallengerOnly: challengerOnly, ChampionOnly: championOnly, PValue: McNemar(challengerOnly, championOnly)}
	p.Significant = p.PValue < 0.05
	switch {
	case challengerOnly+championOnly == 0:
		p.Verdict = fmt.Sprintf("on %s both answered, they are right on the same ones", plural(n, "request"))
	case p.Significant && challengerOnly > championOnly:
		p.Verdict = fmt.Sprintf("on the same requests, significantly better than the champion at 5%% (right on %d it missed, wrong on %d it got; p = %.3g)", challengerOnly, championOnly, p.PValue)
	case p.Significant:
		p.Verdict = fmt.Sprintf("on the same requests, significantly worse than the champion at 5%% (right on %d it missed, wrong on %d it got; p = %.3g)", challengerOnly, championOnly, p.PValue)
	default:
		p.Verdict = fmt.Sprintf("on the same requests, not significant at 5%% (right on %d it missed, wrong on %d it got; p = %.3g)", challengerOnly, championOnly, p.PValue)
	}
	return p
}

// Proportion is Hits of N with its Wilson 95% interval.
type Proportion struct {
	N    int     `json:"n"`
	Hits int     `json:"hits"`
	Rate float64 `json:"rate"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Wilson is hits of n with its Wilson score 95% interval (n > 0).
func Wilson(hits, n int) Proportion {
	p := float64(hits) / float64(n)
	z2 := z95 * z95
	nf := float64(n)
	d := 1 + z2/nf
	c := (p + z2/(2*nf)) / d
	h := z95 / d * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return Proportion{N: n, Hits: hits, Rate: p, Low: max(0, c-h), High: min(1, c+h)}
}

// Test is a two-sided two-proportion z-test of a challenger's accuracy
// against the champion's (pooled standard error).
type Test struct {
	Diff        float64 `json:"diff"` // challenger − champion
	Z           float64 `json:"z"`
	PValue      float64 `json:"p_value"`
	Significant bool    `json:"significant"` // at 5%
	// Rough: an expected count under 5, where the normal approximation is poor.
	Rough bool `json:"rough,omitempty"`
}

// TwoProportion tests x1 of n1 against x2 of n2 (both n > 0).
func TwoProportion(x1, n1, x2, n2 int) Test {
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	t := Test{Diff: p1 - p2, PValue: 1}
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se > 0 {
		t.Z = (p1 - p2) / se
		t.PValue = math.Erfc(math.Abs(t.Z) / math.Sqrt2)
	}
	t.Significant = t.PValue < 0.05
	small := min(p, 1-p) * float64(min(n1, n2))
	t.Rough = small < 5
	return t
}

// verdict says a test in a sentence.
func (t Test) verdict() string {
	s := fmt.Sprintf("not significant at 5%% (p = %.3g)", t.PValue)
	if t.Significant {
		word := "better"
		if t.Diff < 0 {
			word = "worse"
		}
		s = fmt.Sprintf("significantly %s than the champion at 5%% (p = %.3g)", word, t.PValue)
	}
	if t.Rough {
		s += "; few samples, the test is rough"
	}
	return s
}

// Compare computes the report of the entries. champion names the champion
// by VERSION or MODEL/VERSION; "" takes the version that answered the most
// requests.
func (es *Entries) Compare(champion string) (*Report, error) {
	type stats struct {
		VersionStats
		conf, lat float64
		n         int
	}
	byKey := map[string]*stats{}
	type answer struct {
		key, top1 string
	}
	answers := map[string][]answer{} // request id → the last answer of each version
	labels := map[string]string{}    // request id → the last true label
	rep := &Report{Skipped: es.Skipped, Versions: []VersionStats{}}
	primary := 0
	for _, e := range es.entries {
		if e.Feedback {
			labels[e.RequestID] = e.Label
			continue
		}
		rep.Records++
		key := e.Model + "/" + e.Version
		s := byKey[key]
		if s == nil {
			s = &stats{VersionStats: VersionStats{Key: key, Model: e.Model, Version: e.Version}}
			byKey[key] = s
		}
		if e.Shadow {
			s.Shadow++
		} else {
			s.Requests++
			primary++
		}
		top1 := ""
		if e.HasTop {
			top1 = e.Top1
			s.conf += float64(e.Conf)
		}
		s.lat += float64(e.LatencyMS)
		s.n++
		as := answers[e.RequestID]
		if i := slices.IndexFunc(as, func(a answer) bool { return a.key == key }); i >= 0 {
			as[i].top1 = top1
		} else {
			answers[e.RequestID] = append(as, answer{key, top1})
		}
	}
	if len(byKey) == 0 {
		if champion != "" {
			return nil, fmt.Errorf("champion %q: the log has no predictions", champion)
		}
		return rep, nil
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	champ, err := pickChampion(champion, keys, func(k string) int { return byKey[k].Requests })
	if err != nil {
		return nil, err
	}
	rep.Champion = champ
	// Pairs with the champion, and accuracy, over each request's answers.
	agree := map[string][2]int{} // key → agreeing, pairs
	acc := map[string][2]int{}   // key → correct, with feedback
	pair := map[string][3]int{}  // key → with feedback both answered, only it right, only the champion right
	for id, as := range answers {
		ci := slices.IndexFunc(as, func(a answer) bool { return a.key == champ })
		label, known := labels[id]
		if known {
			rep.Feedback++
		}
		for _, a := range as {
			if ci >= 0 && a.key != champ {
				c := agree[a.key]
				c[1]++
				if a.top1 == as[ci].top1 {
					c[0]++
				}
				agree[a.key] = c
			}
			if known {
				c := acc[a.key]
				c[1]++
				if a.top1 == label {
					c[0]++
				}
				acc[a.key] = c
				if ci >= 0 && a.key != champ {
					p := pair[a.key]
					p[0]++
					if mine, theirs := a.top1 == label, as[ci].top1 == label; mine && !theirs {
						p[1]++
					} else if theirs && !mine {
						p[2]++
					}
					pair[a.key] = p
				}
			}
		}
	}
	slices.SortStableFunc(keys, func(a, b string) int {
		return cmp.Compare(b2i(b == champ), b2i(a == champ))
	})
	for _, k := range keys {
		s := byKey[k]
		v := s.VersionStats
		v.Champion = k == champ
		if primary > 0 {
			v.Share = float64(v.Requests) / float64(primary)
		}
		v.MeanConfidence = s.conf / float64(s.n)
		v.MeanLatencyMS = math.Round(1000*s.lat/float64(s.n)) / 1000 // µs: the log's float32 says no more
		if c := agree[k]; c[1] > 0 {
			p := Wilson(c[0], c[1])
			v.Agreement = &p
		}
		if c := acc[k]; c[1] > 0 {
			p := Wilson(c[0], c[1])
			v.Accuracy = &p
		}
		if p := pair[k]; p[0] > 0 {
			v.Paired = pairedOf(p[0], p[1], p[2])
		}
		if !v.Champion {
			ca := acc[champ]
			switch {
			case v.Accuracy == nil:
				v.Verdict = "no feedback for this version yet"
			case ca[1] == 0:
				v.Verdict = "no feedback for the champion yet"
			default:
				t := TwoProportion(v.Accuracy.Hits, v.Accuracy.N, ca[0], ca[1])
				v.Test = &t
				v.Verdict = t.verdict()
			}
		}
		rep.Versions = append(rep.Versions, v)
	}
	return rep, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pickChampion finds the champion's key among keys (sorted): by
// MODEL/VERSION, or by a VERSION only one model has; "" the most requests.
func pickChampion(name string, keys []string, requests func(string) int) (string, error) {
	if name == "" {
		best := keys[0]
		for _, k := range keys[1:] {
			if requests(k) > requests(best) {
				best = k
			}
		}
		return best, nil
	}
	var found []string
	for _, k := range keys {
		_, v, _ := strings.Cut(k, "/")
		if k == name {
			return k, nil
		}
		if v == name {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("champion %q: no such version in the log (it has %s)", name, strings.Join(keys, ", "))
	}
	return "", fmt.Errorf("champion %q: several models have this version (%s); name it MODEL/VERSION", name, strings.Join(found, ", "))
}

// WriteText prints the report as a table and one verdict a line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s with feedback", plural(r.Records, "prediction"), plural(r.Feedback, "request"))
	if r.Skipped > 0 {
		fmt.Fprintf(&b, ", %s skipped", plural(r.Skipped, "unreadable line"))
	}
	if r.Dropped > 0 {
		fmt.Fprintf(&b, ", %s dropped", plural(int(r.Dropped), "record"))
	}
	b.WriteString("\n")
	if len(r.Versions) == 0 {
		b.WriteString("no predictions logged\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tROLE\tREQUESTS\tSHARE\tSHADOW\tCONFIDENCE\tLATENCY\tAGREEMENT\tACCURACY (95% CI)")
	for _, v := range r.Versions {
		role := "challenger"
		if v.Champion {
			role = "champion"
		}
		agree, accuracy := "-", "-"
		if v.Agreement != nil {
			agree = fmt.Sprintf("%.1f%% of %d", 100*v.Agreement.Rate, v.Agreement.N)
		}
		if v.Accuracy != nil {
			a := v.Accuracy
			accuracy = fmt.Sprintf("%.1f%% [%.1f, %.1f] of %d", 100*a.Rate, 100*a.Low, 100*a.High, a.N)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f%%\t%d\t%.3f\t%.1f ms\t%s\t%s\n", v.Key, role, v.Requests, 100*v.Share, v.Shadow,
			v.MeanConfidence, v.MeanLatencyMS, agree, accuracy)
	}
	tw.Flush()
	for _, v := range r.Versions {
		if !v.Champion {
			fmt.Fprintf(&b, "%s against %s: %s\n", v.Key, r.Champion, v.Verdict)
			if v.Paired != nil {
				fmt.Fprintf(&b, "%s against %s: %s\n", v.Key, r.Champion, v.Paired.Verdict)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
