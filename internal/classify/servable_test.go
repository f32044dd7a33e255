package classify

import (
	"strings"
	"testing"

	"petbreed/internal/imaging"
)

// TestCheckServable: the real backbone passes the server's check (its
// batch is dynamic, it has 1000 classes, its grey-image run gives one row
// of finite scores), and keeps classifying after it.
func TestCheckServable(t *testing.T) {
	c := openBackbone(t)
	if err := c.CheckServable(); err != nil {
		t.Fatalf("the backbone is not servable: %v", err)
	}
	if b := c.input.Shape[0]; b > 1 {
		t.Fatalf("the backbone's batch is fixed to %d; the check should have refused it", b)
	}
	got, err := classifyImages(c, []*imaging.RGB{decode(t, "photos", "chelsea.png")}, 1)
	if err != nil || len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("classify after the check: %v, %v", got, err)
	}
}

// TestCheckServableRefuses: a batch fixed above 1 and an unknown class
// count without labels are refused with what is wrong (the shapes are
// changed in place: no such model is among the assets).
func TestCheckServableRefuses(t *testing.T) {
	for _, c := range []struct {
		what string
		edit func(*Classifier)
		want string
	}{
		{"fixed batch", func(c *Classifier) { c.input.Shape = []int64{4, 3, 224, 224} }, "batch size is fixed to 4"},
		{"no class count", func(c *Classifier) { c.classes, c.labels = 0, nil }, "class count is not fixed"},
	} {
		clf := openBackbone(t)
		c.edit(clf)
		if err := clf.CheckServable(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.what, err, c.want)
		}
	}
}
