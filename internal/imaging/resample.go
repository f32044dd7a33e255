package imaging

import (
	"fmt"
	"image"
	"math"
	"strings"
	"sync"
)

// Filter is a resampling filter, as Pillow's Image.Resampling names them.
type Filter int

// The resampling filters. Nearest is Pillow's affine nearest-neighbour
// sampling; the others are Pillow's separable convolutions (8-bit fixed point,
// support scaled by the downscale factor, i.e. antialiased).
const (
	Nearest Filter = iota
	Bilinear
	Bicubic
	Lanczos
	Box
	Hamming
)

var filterNames = [...]string{
	Nearest:  "nearest",
	Bilinear: "bilinear",
	Bicubic:  "bicubic",
	Lanczos:  "lanczos",
	Box:      "box",
	Hamming:  "hamming",
}

// String returns the filter's lower-case name, as ParseFilter accepts it.
func (f Filter) String() string {
	if f >= 0 && int(f) < len(filterNames) {
		return filterNames[f]
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// ParseFilter maps a filter name (case-insensitive) to a Filter.
func ParseFilter(name string) (Filter, error) {
	for i, n := range filterNames {
		if strings.EqualFold(name, n) {
			return Filter(i), nil
		}
	}
	return 0, fmt.Errorf("unknown resampling filter %q (valid: nearest, bilinear, bicubic, lanczos, box, hamming)", name)
}

// The filter kernels, with Pillow's exact double-precision arithmetic. The
// explicit float64 conversions forbid the compiler from fusing a multiply
// and an add (Pillow's C is built without FMA contraction on x86-64).

func boxKernel(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

func bilinearKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

func hammingKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x == 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	x = x * math.Pi
	// Pillow writes the constants as C floats (0.54f, 0.46f).
	return float64(math.Sin(x)/x) * float64(float64(float32(0.54))+float64(float64(float32(0.46))*math.Cos(x)))
}

func bicubicKernel(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64(float64((a+2)*x) - (a + 3))
		return float64(float64(t*x)*x) + 1
	}
	if x < 2 {
		t := float64(float64((x-5)*x) + 8)
		return float64(float64(t*x)-4) * a
	}
	return 0
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x = x * math.Pi
	return math.Sin(x) / x
}

func lanczosKernel(x float64) float64 {
	if -3 <= x && x < 3 {
		return sinc(x) * sinc(x/3)
	}
	return 0
}

// kernelFor returns the filter function and its support (radius at scale 1).
func kernelFor(f Filter) (func(float64) float64, float64) {
	switch f {
	case Box:
		return boxKernel, 0.5
	case Hamming:
		return hammingKernel, 1
	case Bicubic:
		return bicubicKernel, 2
	case Lanczos:
		return lanczosKernel, 3
	default:
		return bilinearKernel, 1
	}
}

const (
	precisionBits = 32 - 8 - 2 // Pillow's PRECISION_BITS
	accInit       = 1 << (precisionBits - 1)
)

// clipTable maps acc>>precisionBits (in [-512, 511] for an int32) plus 512
// to 8 bits, like Pillow's clip8_lookups.
var clipTable = func() (t [1024]uint8) {
	for i := range t {
		t[i] = uint8(min(max(i-512, 0), 255))
	}
	return t
}()

// clip8 is Pillow's clip8: the 8-bit value of a fixed-point accumulator
// (0 below zero, 255 from 256<<precisionBits, else acc>>precisionBits).
func clip8(v int32) uint8 {
	x := v >> precisionBits
	if uint32(x) <= 255 {
		return uint8(x)
	}
	return clipTable[uint32(x+512)&1023]
}

// weights holds the fixed-point coefficients of a range of output pixels
// along one axis (Pillow's precompute_coeffs + normalize_coeffs_8bpc), laid
// out with the same number of taps for every output pixel: Pillow's taps,
// padded with zero coefficients (which do not change the integer sums) and
// shifted so that start+taps never passes the end of the input.
type weights struct {
	start []int32 // first source index read by each output pixel
	k     []int32 // taps coefficients per output pixel
	taps  int
}

// computeWeights computes the coefficients of output pixels [o0, o1) for a
// resize of inSize to outSize (box 0..inSize).
func computeWeights(inSize, outSize, o0, o1 int, f Filter) *weights {
	kern, fsupport := kernelFor(f)
	// (double)(in1 - in0) / outSize, with in0 = 0 and in1 = inSize as floats.
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := fsupport * filterscale
	ks := int(math.Ceil(support))*2 + 1
	cnt := o1 - o0
	starts := make([]int32, cnt)
	ns := make([]int32, cnt)
	kk := make([]int32, cnt*ks)
	ss := 1 / filterscale
	pre := make([]float64, ks)
	taps := 1
	for xx := o0; xx < o1; xx++ {
		center := float64(float64(xx)+0.5) * scale
		xmin := int(float64(center-support) + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(float64(center+support) + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		xmax = min(max(xmax, 0), ks) // the clamp to ks cannot trigger
		ww := 0.0
		for x := 0; x < xmax; x++ {
			v := kern(float64(float64(x+xmin)-center+0.5) * ss)
			pre[x] = v
			ww += v
		}
		i := xx - o0
		k := kk[i*ks : i*ks+ks]
		for x := 0; x < xmax; x++ {
			v := pre[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				k[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		starts[i] = int32(xmin)
		ns[i] = int32(xmax)
		taps = max(taps, xmax)
	}
	taps = min(taps, inSize)
	w := &weights{start: starts, k: make([]int32, cnt*taps), taps: taps}
	for i := range cnt {
		s, n := int(starts[i]), int(ns[i])
		shift := max(s+taps-inSize, 0)
		w.start[i] = int32(s - shift)
		copy(w.k[i*taps+shift:i*taps+shift+n], kk[i*ks:i*ks+n])
	}
	return w
}

// span returns the source range [first, last) the weights read.
func (w *weights) span() (first, last int) {
	first, last = math.MaxInt, 0
	for _, s := range w.start {
		first = min(first, int(s))
		last = max(last, int(s)+w.taps)
	}
	return first, last
}

// Resize returns src resized to w x h with Pillow's Image.resize((w, h), f).
// Preconditions: w, h >= 1 and src a well-formed non-empty image; otherwise
// Resize returns an empty (0x0) image rather than panicking.
func Resize(src *RGB, w, h int, f Filter) *RGB {
	return ResizeCrop(src, w, h, f, image.Rect(0, 0, w, h))
}

// ResizeCrop returns exactly Crop(Resize(src, w, h, f), crop), computing only
// the output pixels inside crop. Parts of crop outside the w x h result are
// black, as with Crop. Same preconditions as Resize.
func ResizeCrop(src *RGB, w, h int, f Filter, crop image.Rectangle) *RGB {
	if !validRGB(src) || w < 1 || h < 1 || crop.Empty() {
		return &RGB{}
	}
	pix, cw, ch := resizeCrop(src.Pix, src.W, src.H, 3, w, h, f, crop)
	return &RGB{W: cw, H: ch, Pix: pix}
}

// ResizeGray is Resize for a gray (mode "L") image.
func ResizeGray(src *Gray, w, h int, f Filter) *Gray {
	return ResizeCropGray(src, w, h, f, image.Rect(0, 0, w, h))
}

// ResizeCropGray is ResizeCrop for a gray image.
func ResizeCropGray(src *Gray, w, h int, f Filter, crop image.Rectangle) *Gray {
	if !validGray(src) || w < 1 || h < 1 || crop.Empty() {
		return &Gray{}
	}
	pix, cw, ch := resizeCrop(src.Pix, src.W, src.H, 1, w, h, f, crop)
	return &Gray{W: cw, H: ch, Pix: pix}
}

// Crop returns the part of src inside r as a new image of r's size; pixels
// of r outside src are black (Pillow's Image.crop). An empty r gives an
// empty image.
func Crop(src *RGB, r image.Rectangle) *RGB {
	if r.Empty() {
		return &RGB{}
	}
	dst := NewRGB(r.Dx(), r.Dy())
	if validRGB(src) {
		copyRect(dst.Pix, r.Dx(), src.Pix, src.W, src.H, 3, r)
	}
	return dst
}

// CropGray is Crop for a gray image.
func CropGray(src *Gray, r image.Rectangle) *Gray {
	if r.Empty() {
		return &Gray{}
	}
	dst := NewGray(r.Dx(), r.Dy())
	if validGray(src) {
		copyRect(dst.Pix, r.Dx(), src.Pix, src.W, src.H, 1, r)
	}
	return dst
}

func validRGB(m *RGB) bool {
	return m != nil && m.W > 0 && m.H > 0 && len(m.Pix) >= m.W*m.H*3
}

func validGray(m *Gray) bool {
	return m != nil && m.W > 0 && m.H > 0 && len(m.Pix) >= m.W*m.H
}

// copyRect copies the part of r inside the sw x sh source into dst (r's
// size, dw pixels per row), leaving the rest of dst untouched.
func copyRect(dst []uint8, dw int, src []uint8, sw, sh, nc int, r image.Rectangle) {
	in := r.Intersect(image.Rect(0, 0, sw, sh))
	if in.Empty() {
		return
	}
	n := in.Dx() * nc
	for y := in.Min.Y; y < in.Max.Y; y++ {
		so := (y*sw + in.Min.X) * nc
		do := ((y-r.Min.Y)*dw + in.Min.X - r.Min.X) * nc
		copy(dst[do:do+n], src[so:so+n])
	}
}

// resizeCrop is the implementation for nc channels (1 or 3): it resizes the
// sw x sh image src to w x h and returns the pixels inside crop.
func resizeCrop(src []uint8, sw, sh, nc, w, h int, f Filter, crop image.Rectangle) ([]uint8, int, int) {
	cw, ch := crop.Dx(), crop.Dy()
	dst := make([]uint8, cw*ch*nc)
	in := crop.Intersect(image.Rect(0, 0, w, h))
	if in.Empty() {
		return dst, cw, ch
	}
	if w == sw && h == sh {
		// Pillow returns a copy.
		copyRect(dst, cw, src, sw, sh, nc, crop)
		return dst, cw, ch
	}
	// The computed part, iw x ih, written straight into dst when crop lies
	// inside the result, else into a buffer copied into dst at the end.
	iw, ih := in.Dx(), in.Dy()
	out := dst
	if in != crop {
		out = make([]uint8, iw*ih*nc)
	}
	if f == Nearest {
		resizeNearest(out, src, sw, sh, nc, w, h, in)
	} else {
		resample(out, src, sw, sh, nc, w, h, f, in)
	}
	if in != crop {
		copyRect(dst, cw, out, iw, ih, nc, crop.Sub(in.Min))
	}
	return dst, cw, ch
}

// resizeNearest is Pillow's resize with NEAREST: an affine scale with
// nearest sampling (ImagingScaleAffine), whose source coordinates are
// accumulated in double precision and truncated; out-of-range samples are
// black. It writes the pixels of r (inside the w x h result) to dst.
func resizeNearest(dst, src []uint8, sw, sh, nc, w, h int, r image.Rectangle) {
	ax := float64(float32(sw)) / float64(w)
	ay := float64(float32(sh)) / float64(h)
	xin := make([]int, r.Dx())
	xo := ax * 0.5
	for x := 0; x < r.Max.X; x++ {
		if x >= r.Min.X {
			v := -1
			if xo >= 0 {
				v = int(xo)
			}
			if v >= sw {
				v = -1
			}
			xin[x-r.Min.X] = v
		}
		xo += ax
	}
	yo := ay * 0.5
	rowBytes := r.Dx() * nc
	for y := 0; y < r.Max.Y; y++ {
		if y >= r.Min.Y {
			yi := -1
			if yo >= 0 {
				yi = int(yo)
			}
			out := dst[(y-r.Min.Y)*rowBytes : (y-r.Min.Y+1)*rowBytes]
			if yi >= 0 && yi < sh {
				row := src[yi*sw*nc : (yi+1)*sw*nc]
				if nc == 3 {
					for i, xi := range xin {
						o := out[i*3 : i*3+3 : i*3+3]
						if xi < 0 {
							o[0], o[1], o[2] = 0, 0, 0
							continue
						}
						p := row[xi*3 : xi*3+3 : xi*3+3]
						o[0], o[1], o[2] = p[0], p[1], p[2]
					}
				} else {
					for i, xi := range xin {
						if xi < 0 {
							out[i] = 0
							continue
						}
						out[i] = row[xi]
					}
				}
			} else {
				clear(out)
			}
		}
		yo += ay
	}
}

// resample is Pillow's ImagingResampleInner restricted to the output pixels
// of r: a horizontal pass over the source rows the vertical pass needs,
// rounded to 8 bits, then a vertical pass. A pass whose dimension does not
// change is skipped, as in Pillow.
func resample(dst, src []uint8, sw, sh, nc, w, h int, f Filter, r image.Rectangle) {
	needH := w != sw
	needV := h != sh
	rowBytes := r.Dx() * nc

	var vw *weights
	yFirst, yLast := r.Min.Y, r.Max.Y // source rows the vertical pass reads
	if needV {
		vw = computeWeights(sh, h, r.Min.Y, r.Max.Y, f)
		yFirst, yLast = vw.span()
	}

	// The intermediate image: its rows are the source rows yFirst..yLast,
	// its columns the columns r.Min.X..r.Max.X of the horizontal result.
	var tmp []uint8
	tmpStride, tmpOff := rowBytes, 0
	if needH {
		hw := computeWeights(sw, w, r.Min.X, r.Max.X, f)
		rows := yLast - yFirst
		if !needV { // the horizontal pass is the result
			hpass(dst, src[yFirst*sw*nc:yLast*sw*nc], sw*nc, nc, rows, hw)
			return
		}
		buf := getBuf(rowBytes * rows)
		defer tmpPool.Put(buf)
		tmp = (*buf)[:rowBytes*rows]
		hpass(tmp, src[yFirst*sw*nc:yLast*sw*nc], sw*nc, nc, rows, hw)
	} else {
		tmp = src[yFirst*sw*nc : yLast*sw*nc]
		tmpStride, tmpOff = sw*nc, r.Min.X*nc
	}
	for i := range vw.start {
		vw.start[i] -= int32(yFirst)
	}
	vpass(dst, tmp, tmpStride, tmpOff, rowBytes, vw)
}

// tmpPool recycles the intermediate images of the two-pass resize (a few
// hundred KB each for photos), sparing their allocation and zeroing.
var tmpPool sync.Pool

func getBuf(n int) *[]uint8 {
	if b, ok := tmpPool.Get().(*[]uint8); ok && cap(*b) >= n {
		return b
	}
	b := make([]uint8, n)
	return &b
}

// hpass is the horizontal pass: rows rows of src (stride bytes apart, nc
// interleaved channels) into dst (len(wt.start) pixels per row). Rows are
// processed two at a time so that each coefficient load serves both.
func hpass(dst, src []uint8, stride, nc, rows int, wt *weights) {
	ow := len(wt.start) * nc
	for y := 0; y < rows; y += 2 {
		row0 := src[y*stride : y*stride+stride]
		out0 := dst[y*ow : y*ow+ow]
		row1, out1 := row0, out0
		if y+1 < rows {
			row1 = src[(y+1)*stride : (y+1)*stride+stride]
			out1 = dst[(y+1)*ow : (y+1)*ow+ow]
		} else {
			out1 = make([]uint8, ow) // odd last row: computed twice
		}
		if nc == 3 {
			switch wt.taps {
			case 2:
				hrow3k2(out0, out1, row0, row1, wt.start, wt.k)
			case 3:
				hrow3k3(out0, out1, row0, row1, wt.start, wt.k)
			case 4:
				hrow3k4(out0, out1, row0, row1, wt.start, wt.k)
			case 5:
				hrow3k5(out0, out1, row0, row1, wt.start, wt.k)
			default:
				hrow3(out0, out1, row0, row1, wt.start, wt.k, wt.taps)
			}
		} else {
			hrow1(out0, out1, row0, row1, wt.start, wt.k, wt.taps)
		}
	}
}

// hrow3kN computes two rows (row0 -> out0, row1 -> out1; they may be the
// same) of the 3-channel horizontal pass with exactly N taps, unrolled.
func hrow3k2(out0, out1, row0, row1 []uint8, start, k []int32) {
	k = k[:2*len(start)]
	out0 = out0[:3*len(start)]
	out1 = out1[:3*len(start)]
	row1 = row1[:len(row0)]
	for i, s := range start {
		p := row0[int(s)*3 : int(s)*3+6 : int(s)*3+6]
		q := row1[int(s)*3 : int(s)*3+6 : int(s)*3+6]
		c := k[i*2 : i*2+2 : i*2+2]
		k0, k1 := c[0], c[1]
		o := out0[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(p[0])*k0 + int32(p[3])*k1)
		o[1] = clip8(accInit + int32(p[1])*k0 + int32(p[4])*k1)
		o[2] = clip8(accInit + int32(p[2])*k0 + int32(p[5])*k1)
		o = out1[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(q[0])*k0 + int32(q[3])*k1)
		o[1] = clip8(accInit + int32(q[1])*k0 + int32(q[4])*k1)
		o[2] = clip8(accInit + int32(q[2])*k0 + int32(q[5])*k1)
	}
}

func hrow3k3(out0, out1, row0, row1 []uint8, start, k []int32) {
	k = k[:3*len(start)]
	out0 = out0[:3*len(start)]
	out1 = out1[:3*len(start)]
	row1 = row1[:len(row0)]
	for i, s := range start {
		p := row0[int(s)*3 : int(s)*3+9 : int(s)*3+9]
		q := row1[int(s)*3 : int(s)*3+9 : int(s)*3+9]
		c := k[i*3 : i*3+3 : i*3+3]
		k0, k1, k2 := c[0], c[1], c[2]
		o := out0[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(p[0])*k0 + int32(p[3])*k1 + int32(p[6])*k2)
		o[1] = clip8(accInit + int32(p[1])*k0 + int32(p[4])*k1 + int32(p[7])*k2)
		o[2] = clip8(accInit + int32(p[2])*k0 + int32(p[5])*k1 + int32(p[8])*k2)
		o = out1[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(q[0])*k0 + int32(q[3])*k1 + int32(q[6])*k2)
		o[1] = clip8(accInit + int32(q[1])*k0 + int32(q[4])*k1 + int32(q[7])*k2)
		o[2] = clip8(accInit + int32(q[2])*k0 + int32(q[5])*k1 + int32(q[8])*k2)
	}
}

func hrow3k4(out0, out1, row0, row1 []uint8, start, k []int32) {
	k = k[:4*len(start)]
	out0 = out0[:3*len(start)]
	out1 = out1[:3*len(start)]
	row1 = row1[:len(row0)]
	for i, s := range start {
		p := row0[int(s)*3 : int(s)*3+12 : int(s)*3+12]
		q := row1[int(s)*3 : int(s)*3+12 : int(s)*3+12]
		c := k[i*4 : i*4+4 : i*4+4]
		k0, k1, k2, k3 := c[0], c[1], c[2], c[3]
		o := out0[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(p[0])*k0 + int32(p[3])*k1 + int32(p[6])*k2 + int32(p[9])*k3)
		o[1] = clip8(accInit + int32(p[1])*k0 + int32(p[4])*k1 + int32(p[7])*k2 + int32(p[10])*k3)
		o[2] = clip8(accInit + int32(p[2])*k0 + int32(p[5])*k1 + int32(p[8])*k2 + int32(p[11])*k3)
		o = out1[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(q[0])*k0 + int32(q[3])*k1 + int32(q[6])*k2 + int32(q[9])*k3)
		o[1] = clip8(accInit + int32(q[1])*k0 + int32(q[4])*k1 + int32(q[7])*k2 + int32(q[10])*k3)
		o[2] = clip8(accInit + int32(q[2])*k0 + int32(q[5])*k1 + int32(q[8])*k2 + int32(q[11])*k3)
	}
}

func hrow3k5(out0, out1, row0, row1 []uint8, start, k []int32) {
	k = k[:5*len(start)]
	out0 = out0[:3*len(start)]
	out1 = out1[:3*len(start)]
	row1 = row1[:len(row0)]
	for i, s := range start {
		p := row0[int(s)*3 : int(s)*3+15 : int(s)*3+15]
		q := row1[int(s)*3 : int(s)*3+15 : int(s)*3+15]
		c := k[i*5 : i*5+5 : i*5+5]
		k0, k1, k2, k3, k4 := c[0], c[1], c[2], c[3], c[4]
		o := out0[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(p[0])*k0 + int32(p[3])*k1 + int32(p[6])*k2 + int32(p[9])*k3 + int32(p[12])*k4)
		o[1] = clip8(accInit + int32(p[1])*k0 + int32(p[4])*k1 + int32(p[7])*k2 + int32(p[10])*k3 + int32(p[13])*k4)
		o[2] = clip8(accInit + int32(p[2])*k0 + int32(p[5])*k1 + int32(p[8])*k2 + int32(p[11])*k3 + int32(p[14])*k4)
		o = out1[i*3 : i*3+3 : i*3+3]
		o[0] = clip8(accInit + int32(q[0])*k0 + int32(q[3])*k1 + int32(q[6])*k2 + int32(q[9])*k3 + int32(q[12])*k4)
		o[1] = clip8(accInit + int32(q[1])*k0 + int32(q[4])*k1 + int32(q[7])*k2 + int32(q[10])*k3 + int32(q[13])*k4)
		o[2] = clip8(accInit + int32(q[2])*k0 + int32(q[5])*k1 + int32(q[8])*k2 + int32(q[11])*k3 + int32(q[14])*k4)
	}
}

// hrow3 handles any number of taps.
func hrow3(out0, out1, row0, row1 []uint8, start, k []int32, taps int) {
	k = k[:taps*len(start)]
	out0 = out0[:3*len(start)]
	out1 = out1[:3*len(start)]
	row1 = row1[:len(row0)]
	for i, s := range start {
		p := row0[int(s)*3 : int(s)*3+3*taps]
		q := row1[int(s)*3 : int(s)*3+3*taps]
		c := k[i*taps : i*taps+taps]
		var a0, a1, a2, b0, b1, b2 int32 = accInit, accInit, accInit, accInit, accInit, accInit
		j := 0
		for ; j+2 <= len(c); j += 2 {
			pp := p[j*3 : j*3+6 : j*3+6]
			qq := q[j*3 : j*3+6 : j*3+6]
			k0, k1 := c[j], c[j+1]
			a0 += int32(pp[0])*k0 + int32(pp[3])*k1
			a1 += int32(pp[1])*k0 + int32(pp[4])*k1
			a2 += int32(pp[2])*k0 + int32(pp[5])*k1
			b0 += int32(qq[0])*k0 + int32(qq[3])*k1
			b1 += int32(qq[1])*k0 + int32(qq[4])*k1
			b2 += int32(qq[2])*k0 + int32(qq[5])*k1
		}
		if j < len(c) {
			pp := p[j*3 : j*3+3 : j*3+3]
			qq := q[j*3 : j*3+3 : j*3+3]
			k0 := c[j]
			a0 += int32(pp[0]) * k0
			a1 += int32(pp[1]) * k0
			a2 += int32(pp[2]) * k0
			b0 += int32(qq[0]) * k0
			b1 += int32(qq[1]) * k0
			b2 += int32(qq[2]) * k0
		}
		o := out0[i*3 : i*3+3 : i*3+3]
		o[0], o[1], o[2] = clip8(a0), clip8(a1), clip8(a2)
		o = out1[i*3 : i*3+3 : i*3+3]
		o[0], o[1], o[2] = clip8(b0), clip8(b1), clip8(b2)
	}
}

// hrow1 is the one-channel horizontal pass.
func hrow1(out0, out1, row0, row1 []uint8, start, k []int32, taps int) {
	k = k[:taps*len(start)]
	out0 = out0[:len(start)]
	out1 = out1[:len(start)]
	row1 = row1[:len(row0)]
	if taps == 3 {
		for i, s := range start {
			p := row0[int(s) : int(s)+3 : int(s)+3]
			q := row1[int(s) : int(s)+3 : int(s)+3]
			c := k[i*3 : i*3+3 : i*3+3]
			k0, k1, k2 := c[0], c[1], c[2]
			out0[i] = clip8(accInit + int32(p[0])*k0 + int32(p[1])*k1 + int32(p[2])*k2)
			out1[i] = clip8(accInit + int32(q[0])*k0 + int32(q[1])*k1 + int32(q[2])*k2)
		}
		return
	}
	for i, s := range start {
		p := row0[int(s) : int(s)+taps]
		q := row1[int(s) : int(s)+taps]
		c := k[i*taps : i*taps+taps]
		a, b := int32(accInit), int32(accInit)
		j := 0
		for ; j+2 <= len(c); j += 2 {
			pp, qq := p[j:j+2:j+2], q[j:j+2:j+2]
			k0, k1 := c[j], c[j+1]
			a += int32(pp[0])*k0 + int32(pp[1])*k1
			b += int32(qq[0])*k0 + int32(qq[1])*k1
		}
		if j < len(c) && j < len(p) && j < len(q) {
			a += int32(p[j]) * c[j]
			b += int32(q[j]) * c[j]
		}
		out0[i], out1[i] = clip8(a), clip8(b)
	}
}

// vpass is the vertical pass, channel-agnostic: output row yy is the
// weighted sum of its taps source rows (n bytes from byte off of rows
// stride bytes apart). Up to 4 taps it sums each byte directly; beyond, it
// accumulates whole rows into acc, two taps at a time.
func vpass(dst, src []uint8, stride, off, n int, wt *weights) {
	taps := wt.taps
	rows := make([][]uint8, max(taps, 4))
	var acc []int32
	if taps > 4 {
		acc = make([]int32, n)
	}
	for yy, s32 := range wt.start {
		s := int(s32)
		k := wt.k[yy*taps : yy*taps+taps]
		out := dst[yy*n : yy*n+n]
		for j := 0; j < taps; j++ {
			o := (s+j)*stride + off
			rows[j] = src[o : o+n : o+n]
		}
		switch taps {
		case 1:
			vrow2(out, rows[0], rows[0], k[0], 0)
		case 2:
			vrow2(out, rows[0], rows[1], k[0], k[1])
		case 3:
			vrow3(out, rows[0], rows[1], rows[2], k[0], k[1], k[2])
		case 4:
			vrow4(out, rows[0], rows[1], rows[2], rows[3], k[0], k[1], k[2], k[3])
		default:
			vrowN(out, rows[:taps], k, acc)
		}
	}
}

func vrow2(out, r0, r1 []uint8, k0, k1 int32) {
	r0, r1 = r0[:len(out)], r1[:len(out)]
	for i := range out {
		out[i] = clip8(accInit + int32(r0[i])*k0 + int32(r1[i])*k1)
	}
}

func vrow3(out, r0, r1, r2 []uint8, k0, k1, k2 int32) {
	r0, r1, r2 = r0[:len(out)], r1[:len(out)], r2[:len(out)]
	for i := range out {
		out[i] = clip8(accInit + int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2)
	}
}

func vrow4(out, r0, r1, r2, r3 []uint8, k0, k1, k2, k3 int32) {
	r0, r1, r2, r3 = r0[:len(out)], r1[:len(out)], r2[:len(out)], r3[:len(out)]
	for i := range out {
		out[i] = clip8(accInit + int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2 + int32(r3[i])*k3)
	}
}

// vrowN sums any number of taps through the accumulator row acc.
func vrowN(out []uint8, rows [][]uint8, k []int32, acc []int32) {
	a := acc[:len(out)]
	k = k[:len(rows)]
	// Taps in groups of four: the first group sets acc, the middle ones
	// add to it, the last one (1 to 4 taps) adds and clips into out.
	last := (len(rows) - 1) / 4 * 4
	for j := 0; j < last; j += 4 {
		r0, r1, r2, r3 := rows[j][:len(a)], rows[j+1][:len(a)], rows[j+2][:len(a)], rows[j+3][:len(a)]
		k0, k1, k2, k3 := k[j], k[j+1], k[j+2], k[j+3]
		if j == 0 {
			for i := range a {
				a[i] = accInit + int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2 + int32(r3[i])*k3
			}
		} else {
			for i := range a {
				a[i] += int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2 + int32(r3[i])*k3
			}
		}
	}
	var kl [4]int32
	var rl [4][]uint8
	for j := last; j < last+4; j++ {
		if j < len(rows) {
			kl[j-last], rl[j-last] = k[j], rows[j]
		} else {
			rl[j-last] = rows[last] // zero coefficient
		}
	}
	r0, r1, r2, r3 := rl[0][:len(a)], rl[1][:len(a)], rl[2][:len(a)], rl[3][:len(a)]
	for i := range out {
		out[i] = clip8(a[i] + int32(r0[i])*kl[0] + int32(r1[i])*kl[1] + int32(r2[i])*kl[2] + int32(r3[i])*kl[3])
	}
}
