package main

import (
	"testing"

	"petbreed/internal/tracking"
)

func TestRunHyper(t *testing.T) {
	tests := []struct {
		name                string
		params              map[string]string
		metrics             map[string]float64
		rate, batch, epochs string
	}{
		{"adam", map[string]string{"lr": "0.001", "batch_size": "32", "epochs": "10"}, nil, "0.001", "32", "10"},
		{"lbfgs", map[string]string{"solver": "lbfgs", "l2_grid": "0.0001,0.001"}, map[string]float64{"l2": 0.001}, "l2 0.001", "full", "-"},
		{"lbfgs before its l2 is chosen", map[string]string{"solver": "lbfgs"}, nil, "-", "full", "-"},
		{"nothing recorded", nil, nil, "-", "-", "-"},
	}
	for _, tt := range tests {
		rate, batch, epochs := runHyper(tracking.RunInfo{Params: tt.params, Metrics: tt.metrics})
		if rate != tt.rate || batch != tt.batch || epochs != tt.epochs {
			t.Errorf("%s: %q %q %q, want %q %q %q", tt.name, rate, batch, epochs, tt.rate, tt.batch, tt.epochs)
		}
	}
}
