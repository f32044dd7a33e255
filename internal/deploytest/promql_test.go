package deploytest

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`rate(petbreed_http_requests_total[5m])`, []string{"petbreed_http_requests_total"}},
		{`sum by (route, le) (rate(a_bucket{instance=~"$instance", code="503"}[$__rate_interval]))`, []string{"a_bucket"}},
		{`histogram_quantile(0.95, sum without(pod) (rate(x_bucket[1m] offset 5m)))`, []string{"x_bucket"}},
		{`sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > bool 0.5`, []string{"a_count", "a_sum"}},
		{`a * on(instance) group_left(version) b{name="by (x)"}`, []string{"a", "b"}},
		{`up == 1 and ignoring(job) process_resident_memory_bytes`, []string{"process_resident_memory_bytes", "up"}},
		{`max_over_time(m:recorded:rate5m[1h:5m]) or vector(0)`, []string{"m:recorded:rate5m"}},
		{`count(x) + count (x)`, []string{"x"}},
		{`1e3 * 2`, nil},
	}
	for _, tt := range tests {
		if got := MetricNames(tt.expr); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("MetricNames(%s) = %q, want %q", tt.expr, got, tt.want)
		}
	}
	if got := VariableMetrics(`label_values(petbreed_model_info{job="x"}, instance)`); !reflect.DeepEqual(got, []string{"petbreed_model_info"}) {
		t.Errorf("VariableMetrics = %q", got)
	}
}

func TestExportedNames(t *testing.T) {
	got := ExportedNames("# HELP a_total x\n# TYPE a_total counter\na_total{code=\"200\"} 3\nb_bucket{le=\"+Inf\"} 1\nb_sum 0.5\nup 1\n\n")
	want := map[string]bool{"a_total": true, "b_bucket": true, "b_sum": true, "up": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ExportedNames = %v", got)
	}
}
