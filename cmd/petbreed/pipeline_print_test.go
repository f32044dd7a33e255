package main

import (
	"bytes"
	"strings"
	"testing"

	"petbreed/internal/pipeline"
)

// TestPrintSummaryAlias: the summary names the alias the pipeline moved,
// not always champion.
func TestPrintSummaryAlias(t *testing.T) {
	for _, alias := range []string{"champion", "challenger"} {
		var b bytes.Buffer
		printSummary(&b, &pipeline.Summary{ModelName: "pet-breed", ModelAlias: alias, ModelVersion: 3,
			ModelURI: "models:/pet-breed/3"}, false)
		if want := "registered: models:/pet-breed/3 (models:/pet-breed@" + alias + ")"; !strings.Contains(b.String(), want) {
			t.Errorf("alias %s: %q, want %q", alias, b.String(), want)
		}
	}
}
