// Package deploytest checks the deployment files against the real
// program: the Grafana dashboard's queries (deploy/grafana) name only
// metrics that `petbreed serve` exports.
package deploytest

import (
	"regexp"
	"sort"
	"strings"
)

var (
	// Quoted strings: label values, regexes.
	stringRe = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// Label matchers, ranges and subqueries.
	bracesRe   = regexp.MustCompile(`\{[^{}]*\}`)
	bracketsRe = regexp.MustCompile(`\[[^\[\]]*\]`)
	// Grouping and vector-matching modifiers with their label lists.
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	// Grafana variables: $name, ${name}, [[name]].
	variableRe = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	// Numbers and durations (5m, 1e3, 0.95) before identifiers.
	tokenRe = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*|[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
)

// keywords are PromQL's words that are not metric names.
var keywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
	"atan2": true, "start": true, "end": true,
}

// MetricNames returns the metric names a PromQL expression reads, sorted
// and without repeats: every identifier that is not a function or
// aggregation (followed by a parenthesis), a keyword, a label (inside
// braces or a by/without list), a duration or a Grafana variable.
func MetricNames(expr string) []string {
	s := stringRe.ReplaceAllString(expr, `""`)
	s = variableRe.ReplaceAllString(s, "0")
	for _, re := range []*regexp.Regexp{bracesRe, bracketsRe, groupingRe} {
		s = re.ReplaceAllString(s, " ")
	}
	seen := map[string]bool{}
	var out []string
	for _, tok := range tokenRe.FindAllString(s, -1) {
		if tok[0] >= '0' && tok[0] <= '9' || strings.HasSuffix(tok, "(") {
			continue
		}
		tok = strings.TrimSpace(tok)
		if keywords[strings.ToLower(tok)] || seen[tok] {
			continue
		}
		seen[tok] = true
		out = append(out, tok)
	}
	sort.Strings(out)
	return out
}

// labelValuesRe is a Grafana variable query reading a metric's labels.
var labelValuesRe = regexp.MustCompile(`label_values\(\s*([^,)]+)`)

// VariableMetrics returns the metric names a Grafana variable query such as
// label_values(metric{...}, label) reads.
func VariableMetrics(query string) []string {
	var out []string
	for _, m := range labelValuesRe.FindAllStringSubmatch(query, -1) {
		out = append(out, MetricNames(m[1])...)
	}
	return out
}

// ExportedNames returns the sample names in a Prometheus text exposition
// (for a histogram: name_bucket, name_sum, name_count).
func ExportedNames(exposition string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
