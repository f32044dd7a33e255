package serve

import (
	"net/http/httptest"
	"testing"
)

// TestRoute: the router holds the model for the request and gives it back
// at release, refuses names the server does not serve (404), and costs no
// allocation per request (its calls are pooled).
func TestRoute(t *testing.T) {
	ts := start(t, Config{})
	m := ts.current()
	req := httptest.NewRequest("POST", "/v2/models/x/infer", nil)
	for _, tt := range []struct {
		name, model, version string
		status               int
	}{
		{"default", "", "", 0},
		{"by name", m.name, "", 0},
		{"by name and version", m.name, m.version, 0},
		{"unknown model", "nope", "", 404},
		{"unknown version", m.name, "99", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, release, err := ts.Route(req, tt.model, tt.version)
			if tt.status != 0 {
				if asAPIError(err).Status != tt.status || p != nil {
					t.Fatalf("err %v, want %d", err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := p.Model(); d.Name != m.name || d.Version != m.version || len(d.Labels) != len(m.classes) ||
				d.TensorLen != m.clf.TensorLen() || d.Input != m.input.Name {
				t.Errorf("model %+v", d)
			}
			if p.Tensor(m.clf.TensorLen()) == nil {
				t.Error("no tensor")
			}
			release()
		})
	}
	allocs := testing.AllocsPerRun(200, func() {
		p, release, err := ts.Route(req, "", "")
		if err != nil || p == nil {
			t.Fatal(err)
		}
		release()
	})
	if allocs > 0 {
		t.Errorf("Route and release: %v allocations, want 0", allocs)
	}
	if v := ts.budget.inUse(); v != 0 {
		t.Errorf("%d bytes of the budget held after release", v)
	}
}
