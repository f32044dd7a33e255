package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"petbreed/internal/train"
)

// TestHyperFlags: train's flags are train.Hyper's fields, with
// train.DefaultHyper as defaults, checked by Hyper's one validation and
// reported by flag name.
func TestHyperFlags(t *testing.T) {
	h := train.DefaultHyper()
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	registerHyper(fs, &h)
	if err := fs.Parse(nil); err != nil || h != train.DefaultHyper() || hyperFlagsError(h) != nil {
		t.Fatalf("defaults: %+v %v %v", h, err, hyperFlagsError(h))
	}
	tests := []struct {
		args []string
		want []string // flags named in the error; nil = valid
	}{
		{[]string{"--label-smoothing", "1"}, nil},
		{[]string{"--lr", "0.01", "--batch-size", "64", "--epochs", "3", "--dropout", "0.5", "--weight-decay", "1e-4", "--adamw", "--patience", "2"}, nil},
		{[]string{"--label-smoothing", "1.5"}, []string{"--label-smoothing 1.5"}},
		{[]string{"--lr", "-1", "--batch-size", "0", "--epochs", "10001"}, []string{"--lr -1", "--batch-size 0", "--epochs 10001"}},
		{[]string{"--dropout", "1", "--weight-decay", "-1", "--patience", "-1"}, []string{"--dropout", "--weight-decay", "--patience"}},
	}
	for _, tc := range tests {
		h := train.DefaultHyper()
		fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
		registerHyper(fs, &h)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err := hyperFlagsError(h)
		if (err == nil) != (tc.want == nil) {
			t.Fatalf("%v: hyperFlagsError = %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not name %s", tc.args, err, w)
			}
		}
	}
}
