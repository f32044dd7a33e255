package features

import (
	"fmt"
	"strings"
)

// More views of an image, all derived from the one tensor the model sees
// (the evaluation transform's 224×224 crop, normalised, CHW): a view is an
// optional square crop of it, resized back to the full size with ONNX
// Resize's bilinear interpolation (mode linear, coordinate transformation
// half_pixel: source = (dst + 0.5)·S/224 − 0.5, clamped to the crop), then
// an optional left-right mirror. Defined on the model's input, a view can be
// reproduced inside an exported ONNX graph (Slice, Resize, a reversed
// Slice or Gather) for test-time augmentation; the cache stores each view
// apart (its name is part of the key).
const (
	Center192        View = "c192"  // centre 192×192 crop, resized to 224: a 7/6 zoom
	Center192Flipped View = "c192f" // the same, mirrored
	TopLeft192       View = "tl192" // corner 192×192 crops, resized to 224
	TopRight192      View = "tr192"
	BottomLeft192    View = "bl192"
	BottomRight192   View = "br192"
)

// ViewSpec is how a view is made from the model's input tensor.
type ViewSpec struct {
	// Crop is the side of the square crop (0: the whole image), at rows
	// [Y, Y+Crop) and columns [X, X+Crop).
	Crop, X, Y int
	Flip       bool // mirror left-right, after the crop and resize
}

// viewSpecs is the one list of views, for a 224×224 input.
var viewSpecs = []struct {
	v    View
	spec ViewSpec
}{
	{Original, ViewSpec{}},
	{Flipped, ViewSpec{Flip: true}},
	{Center192, ViewSpec{Crop: 192, X: 16, Y: 16}},
	{Center192Flipped, ViewSpec{Crop: 192, X: 16, Y: 16, Flip: true}},
	{TopLeft192, ViewSpec{Crop: 192, X: 0, Y: 0}},
	{TopRight192, ViewSpec{Crop: 192, X: 32, Y: 0}},
	{BottomLeft192, ViewSpec{Crop: 192, X: 0, Y: 32}},
	{BottomRight192, ViewSpec{Crop: 192, X: 32, Y: 32}},
}

// Views lists every view, Original first.
func Views() []View {
	out := make([]View, len(viewSpecs))
	for i, s := range viewSpecs {
		out[i] = s.v
	}
	return out
}

// Spec returns how view v is made, or false for an unknown view.
func (v View) Spec() (ViewSpec, bool) {
	for _, s := range viewSpecs {
		if s.v == v {
			return s.spec, true
		}
	}
	return ViewSpec{}, false
}

// ParseView checks a view's name.
func ParseView(name string) (View, error) {
	v := View(name)
	if _, ok := v.Spec(); !ok {
		names := make([]string, len(viewSpecs))
		for i, s := range viewSpecs {
			names[i] = string(s.v)
		}
		return "", fmt.Errorf("unknown view %q (want one of %s)", name, strings.Join(names, ", "))
	}
	return v, nil
}

// UnmarshalText makes a View parse (and check) itself from YAML or JSON.
func (v *View) UnmarshalText(b []byte) error {
	p, err := ParseView(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// applyView writes view spec of src (a 3×size×size CHW tensor) into dst.
func applyView(spec ViewSpec, src, dst []float32, size int) {
	plane := size * size
	if spec.Crop == 0 || spec.Crop == size && spec.X == 0 && spec.Y == 0 {
		copy(dst[:3*plane], src[:3*plane])
	} else {
		// Bilinear weights per output row and column, shared by the planes.
		ys, yw := resizeTaps(spec.Crop, size, spec.Y)
		xs, xw := resizeTaps(spec.Crop, size, spec.X)
		for ch := range 3 {
			in := src[ch*plane : (ch+1)*plane]
			out := dst[ch*plane : (ch+1)*plane]
			for oy := range size {
				r0, r1 := in[ys[2*oy]*size:], in[ys[2*oy+1]*size:]
				fy := yw[oy]
				o := out[oy*size : (oy+1)*size]
				for ox := range size {
					c0, c1, fx := xs[2*ox], xs[2*ox+1], xw[ox]
					top := r0[c0] + fx*(r0[c1]-r0[c0])
					bot := r1[c0] + fx*(r1[c1]-r1[c0])
					o[ox] = top + fy*(bot-top)
				}
			}
		}
	}
	if spec.Flip {
		for ch := range 3 {
			for y := range size {
				row := dst[ch*plane+y*size : ch*plane+(y+1)*size]
				for i, j := 0, size-1; i < j; i, j = i+1, j-1 {
					row[i], row[j] = row[j], row[i]
				}
			}
		}
	}
}

// resizeTaps returns, for each of out output positions of a bilinear
// resize of n input positions starting at off, the two source indices
// (absolute) and the weight of the second: ONNX Resize linear with
// half_pixel coordinates, the source clamped to [0, n−1].
func resizeTaps(n, out, off int) ([]int, []float32) {
	idx := make([]int, 2*out)
	w := make([]float32, out)
	scale := float64(n) / float64(out)
	for o := range out {
		s := (float64(o)+0.5)*scale - 0.5
		s = max(0, min(s, float64(n-1)))
		i0 := int(s)
		i1 := min(i0+1, n-1)
		idx[2*o], idx[2*o+1] = off+i0, off+i1
		w[o] = float32(s - float64(i0))
	}
	return idx, w
}

// Apply writes view v of src, one image's model input (3×size×size CHW,
// normalised), into dst (the same length): the Go reference of the view
// that an exported graph's test-time augmentation must reproduce.
func (v View) Apply(src, dst []float32, size int) error {
	spec, ok := v.Spec()
	switch {
	case !ok:
		_, err := ParseView(string(v))
		return err
	case len(src) != 3*size*size || len(dst) != len(src):
		return fmt.Errorf("view %s: want two tensors of 3×%d×%d values, have %d and %d", v, size, size, len(src), len(dst))
	case spec.Crop > 0 && (size != 224 || spec.X+spec.Crop > size || spec.Y+spec.Crop > size):
		return fmt.Errorf("view %s is defined on a 224×224 input, not %d×%d", v, size, size)
	}
	applyView(spec, src, dst, size)
	return nil
}
