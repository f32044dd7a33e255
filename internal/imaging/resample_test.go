package imaging

import (
	"bytes"
	"fmt"
	"image"
	"math/rand"
	"os"
	"testing"

	"petbreed"
	"petbreed/internal/testassets"
)

// TestPillowParity runs every transform on our own decoder's output and
// compares it with Pillow's for every reference file: decoding differences
// count too. The goal is a mean absolute difference of at most 1.0 level per
// channel; the figures are logged (go test -v -run PillowParity).
func TestPillowParity(t *testing.T) {
	for _, c := range loadManifest(t) {
		data, err := os.ReadFile(sourcePath(t, c.Image))
		if err != nil {
			t.Fatal(err)
		}
		src, _, err := Decode(data, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rw, rh := ShortSideSize(src.W, src.H, 256)
		if [2]int{rw, rh} != c.Resize256 {
			t.Errorf("%s: ShortSideSize = %dx%d, manifest %v", c.Image, rw, rh, c.Resize256)
		}
		box := CenterCropBox(rw, rh, 224)
		if got := [4]int{box.Min.X, box.Min.Y, box.Max.X, box.Max.Y}; got != c.CropBox {
			t.Errorf("%s: CenterCropBox = %v, manifest %v", c.Image, got, c.CropBox)
		}
		crop := petbreed.DefaultPreprocess()
		squash := crop
		squash.Mode = petbreed.ModeSquash
		bicubic := squash
		bicubic.Filter = "bicubic"
		gray := squash
		gray.Grayscale = true
		for _, tc := range []struct {
			name string
			p    petbreed.Preprocess
			nc   int
		}{
			{"resize256_crop224", crop, 3},
			{"squash224_bilinear", squash, 3},
			{"squash224_bicubic", bicubic, 3},
			{"gray_squash224_bilinear", gray, 1},
		} {
			want := testassets.Read(t, "pil-reference", c.Outputs[tc.name])
			out, err := Apply(src, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			got := out.Pix
			if tc.nc == 1 { // Apply repeats grey on three channels
				got = Grayscale(out).Pix
			}
			if len(got) != len(want) {
				t.Errorf("%s %s: %d bytes, want %d", c.Image, tc.name, len(got), len(want))
				continue
			}
			mean, max := meanAbsDiff(got, want, tc.nc)
			t.Logf("%-24s %-24s mean|d| %s max %d", c.Image, tc.name, rsFmtMeans(mean), max)
			for ch, m := range mean {
				if m > 1.0 {
					t.Errorf("%s %s: channel %d mean abs diff %.4f > 1", c.Image, tc.name, ch, m)
				}
			}
		}
	}
}

func rsFmtMeans(m []float64) string {
	var b bytes.Buffer
	for i, v := range m {
		if i > 0 {
			b.WriteByte('/')
		}
		fmt.Fprintf(&b, "%.4f", v)
	}
	return b.String()
}

func rsRandomRGB(rng *rand.Rand, w, h int) *RGB {
	m := NewRGB(w, h)
	rng.Read(m.Pix)
	return m
}

var rsAllFilters = []Filter{Nearest, Bilinear, Bicubic, Lanczos, Box, Hamming}

func TestResizeCropEqualsCropOfResize(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	sizes := []struct{ sw, sh, w, h int }{
		{500, 375, 341, 256}, // downscale
		{37, 23, 80, 61},     // upscale
		{40, 30, 17, 90},     // mixed
		{64, 48, 64, 20},     // vertical only
		{64, 48, 20, 48},     // horizontal only
		{13, 11, 13, 11},     // identity
		{1, 1, 7, 5},
		{9, 9, 1, 1},
	}
	for _, f := range rsAllFilters {
		for _, s := range sizes {
			src := rsRandomRGB(rng, s.sw, s.sh)
			gsrc := Grayscale(src)
			full := Resize(src, s.w, s.h, f)
			gfull := ResizeGray(gsrc, s.w, s.h, f)
			if full.W != s.w || full.H != s.h || gfull.W != s.w || gfull.H != s.h {
				t.Fatalf("%v %v: wrong size", f, s)
			}
			for i := 0; i < 20; i++ {
				x0, y0 := rng.Intn(s.w+4)-2, rng.Intn(s.h+4)-2
				box := image.Rect(x0, y0, x0+1+rng.Intn(s.w), y0+1+rng.Intn(s.h))
				if i == 0 {
					box = CenterCropBox(s.w, s.h, min(s.w, s.h))
				}
				got := ResizeCrop(src, s.w, s.h, f, box)
				want := Crop(full, box)
				if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
					t.Fatalf("%v %dx%d->%dx%d box %v: ResizeCrop != Crop(Resize)", f, s.sw, s.sh, s.w, s.h, box)
				}
				gg := ResizeCropGray(gsrc, s.w, s.h, f, box)
				gw := CropGray(gfull, box)
				if gg.W != gw.W || gg.H != gw.H || !bytes.Equal(gg.Pix, gw.Pix) {
					t.Fatalf("gray %v %dx%d->%dx%d box %v: ResizeCropGray != CropGray(ResizeGray)", f, s.sw, s.sh, s.w, s.h, box)
				}
			}
		}
	}
}

// Gray and RGB share one implementation: resizing a gray image replicated
// to RGB must give the gray result in every channel.
func TestGrayMatchesRGB(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	g := Grayscale(rsRandomRGB(rng, 45, 31))
	for _, f := range rsAllFilters {
		for _, sz := range [][2]int{{20, 15}, {90, 70}, {45, 10}, {30, 21}, {34, 25}, {15, 9}, {7, 5}, {45, 31}} {
			a := ResizeGray(g, sz[0], sz[1], f).ToRGB()
			b := Resize(g.ToRGB(), sz[0], sz[1], f)
			if !bytes.Equal(a.Pix, b.Pix) {
				t.Errorf("%v %v: gray and RGB resize differ", f, sz)
			}
		}
	}
}

func TestResizeSanity(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, f := range rsAllFilters {
		// A constant image stays constant, up and down.
		for _, v := range []uint8{0, 1, 128, 254, 255} {
			src := NewRGB(31, 17)
			for i := range src.Pix {
				src.Pix[i] = v
			}
			for _, sz := range [][2]int{{1, 1}, {10, 7}, {31, 40}, {100, 3}, {224, 224}} {
				out := Resize(src, sz[0], sz[1], f)
				if out.W != sz[0] || out.H != sz[1] {
					t.Fatalf("%v: size %dx%d, want %v", f, out.W, out.H, sz)
				}
				for i, p := range out.Pix {
					if p != v {
						t.Fatalf("%v %v const %d: pixel %d = %d", f, sz, v, i, p)
					}
				}
			}
		}
		// Identity size is a copy (a new buffer).
		src := rsRandomRGB(rng, 23, 19)
		out := Resize(src, 23, 19, f)
		if !bytes.Equal(out.Pix, src.Pix) || &out.Pix[0] == &src.Pix[0] {
			t.Errorf("%v: identity resize is not a copy", f)
		}
		// 1x1 source upscaled is constant.
		one := &RGB{W: 1, H: 1, Pix: []uint8{10, 200, 33}}
		up := Resize(one, 5, 4, f)
		for i := 0; i < len(up.Pix); i += 3 {
			if up.Pix[i] != 10 || up.Pix[i+1] != 200 || up.Pix[i+2] != 33 {
				t.Fatalf("%v: 1x1 upscale pixel %d = %v", f, i/3, up.Pix[i:i+3])
			}
		}
	}
}

func TestNearest(t *testing.T) {
	// 4x1 -> 2x1: source x = int((x+0.5)*2) = 1, 3.
	src := &Gray{W: 4, H: 1, Pix: []uint8{10, 20, 30, 40}}
	if got := ResizeGray(src, 2, 1, Nearest).Pix; !bytes.Equal(got, []uint8{20, 40}) {
		t.Errorf("4->2 nearest = %v", got)
	}
	// 2x1 -> 4x1: int((x+0.5)*0.5) = 0,0,1,1.
	src = &Gray{W: 2, H: 1, Pix: []uint8{10, 20}}
	if got := ResizeGray(src, 4, 1, Nearest).Pix; !bytes.Equal(got, []uint8{10, 10, 20, 20}) {
		t.Errorf("2->4 nearest = %v", got)
	}
	// 3 -> 2: scale 1.5, x = int(0.75), int(2.25) = 0, 2.
	src = &Gray{W: 3, H: 1, Pix: []uint8{10, 20, 30}}
	if got := ResizeGray(src, 2, 1, Nearest).Pix; !bytes.Equal(got, []uint8{10, 30}) {
		t.Errorf("3->2 nearest = %v", got)
	}
	// Every output pixel of an RGB nearest resize is some source pixel of
	// the expected row and column.
	rng := rand.New(rand.NewSource(4))
	s := rsRandomRGB(rng, 37, 29)
	out := Resize(s, 100, 11, Nearest)
	for y := 0; y < out.H; y++ {
		sy := int((float64(y) + 0.5) * 29 / 11)
		for x := 0; x < out.W; x++ {
			sx := int((float64(x) + 0.5) * 37 / 100)
			o := out.Pix[(y*out.W+x)*3:][:3]
			p := s.Pix[(sy*s.W+sx)*3:][:3]
			if !bytes.Equal(o, p) {
				t.Fatalf("nearest (%d,%d) = %v, want source (%d,%d) %v", x, y, o, sx, sy, p)
			}
		}
	}
}

func TestLanczosDownUp(t *testing.T) {
	// A horizontal ramp keeps monotonic after a lanczos resize (no ringing
	// on a linear ramp away from the edges), and values stay in range.
	src := NewRGB(256, 8)
	for y := 0; y < 8; y++ {
		for x := 0; x < 256; x++ {
			i := (y*256 + x) * 3
			src.Pix[i], src.Pix[i+1], src.Pix[i+2] = uint8(x), uint8(x), uint8(x)
		}
	}
	for _, w := range []int{64, 100, 300, 512} {
		out := Resize(src, w, 8, Lanczos)
		row := out.Pix[3*w*4 : 3*w*5]
		for x := 4; x < w-4; x++ {
			if row[x*3] < row[(x-1)*3] {
				t.Fatalf("w=%d: ramp not monotonic at %d: %d < %d", w, x, row[x*3], row[(x-1)*3])
			}
		}
	}
}

func TestFilterNames(t *testing.T) {
	for _, f := range rsAllFilters {
		g, err := ParseFilter(f.String())
		if err != nil || g != f {
			t.Errorf("ParseFilter(%q) = %v, %v", f.String(), g, err)
		}
	}
	for in, want := range map[string]Filter{"BiLinear": Bilinear, "LANCZOS": Lanczos, "nearest": Nearest, "Bicubic": Bicubic} {
		if g, err := ParseFilter(in); err != nil || g != want {
			t.Errorf("ParseFilter(%q) = %v, %v", in, g, err)
		}
	}
	if _, err := ParseFilter("antialias"); err == nil {
		t.Error("ParseFilter(antialias) accepted")
	} else {
		t.Log(err)
	}
}

func TestInvalidSizes(t *testing.T) {
	src := NewRGB(4, 4)
	for _, sz := range [][2]int{{0, 4}, {4, 0}, {-1, 3}} {
		if out := Resize(src, sz[0], sz[1], Bilinear); out.W != 0 || out.H != 0 || len(out.Pix) != 0 {
			t.Errorf("Resize to %v = %dx%d", sz, out.W, out.H)
		}
	}
	if out := Resize(&RGB{}, 3, 3, Bilinear); out.W != 0 {
		t.Errorf("Resize of empty image = %dx%d", out.W, out.H)
	}
	if out := Resize(&RGB{W: 5, H: 5, Pix: make([]uint8, 10)}, 3, 3, Bicubic); out.W != 0 {
		t.Errorf("Resize of short buffer = %dx%d", out.W, out.H)
	}
	if out := Crop(src, image.Rect(2, 2, 2, 5)); out.W != 0 || len(out.Pix) != 0 {
		t.Errorf("empty crop = %dx%d", out.W, out.H)
	}
}

func TestCropPadsBlack(t *testing.T) {
	src := &RGB{W: 2, H: 1, Pix: []uint8{1, 2, 3, 4, 5, 6}}
	got := Crop(src, image.Rect(-1, 0, 3, 2))
	want := []uint8{0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got.Pix, want) {
		t.Errorf("Crop = %v", got.Pix)
	}
}

// rsNaiveResize is a literal transcription of Pillow's ImagingResampleInner
// (8-bit path) for nc channels: per-pixel bounds and coefficients, no
// padding, no cropping, no specialised kernels. Resize must equal it.
func rsNaiveResize(src []uint8, sw, sh, nc, w, h int, f Filter) []uint8 {
	coeffs := func(inSize, outSize int) (bounds [][2]int, kk [][]int32) {
		kern, sup := kernelFor(f)
		scale := float64(inSize) / float64(outSize)
		fs := max(scale, 1)
		support := sup * fs
		ss := 1 / fs
		for xx := 0; xx < outSize; xx++ {
			center := (float64(xx) + 0.5) * scale
			xmin := max(int(center-support+0.5), 0)
			xmax := min(int(center+support+0.5), inSize) - xmin
			ws := make([]float64, xmax)
			ww := 0.0
			for x := range ws {
				ws[x] = kern((float64(x+xmin) - center + 0.5) * ss)
				ww += ws[x]
			}
			k := make([]int32, xmax)
			for x := range ws {
				v := ws[x]
				if ww != 0 {
					v /= ww
				}
				if v < 0 {
					k[x] = int32(-0.5 + v*(1<<22))
				} else {
					k[x] = int32(0.5 + v*(1<<22))
				}
			}
			bounds = append(bounds, [2]int{xmin, xmax})
			kk = append(kk, k)
		}
		return bounds, kk
	}
	clip := func(v int32) uint8 {
		if v < 0 {
			return 0
		}
		if v >= 256<<22 {
			return 255
		}
		return uint8(v >> 22)
	}
	cur, cw, chh := src, sw, sh
	if w != sw {
		b, kk := coeffs(sw, w)
		out := make([]uint8, w*sh*nc)
		for y := 0; y < sh; y++ {
			for xx := 0; xx < w; xx++ {
				for c := 0; c < nc; c++ {
					acc := int32(1 << 21)
					for x := 0; x < b[xx][1]; x++ {
						acc += int32(cur[(y*cw+b[xx][0]+x)*nc+c]) * kk[xx][x]
					}
					out[(y*w+xx)*nc+c] = clip(acc)
				}
			}
		}
		cur, cw = out, w
	}
	if h != sh {
		b, kk := coeffs(sh, h)
		out := make([]uint8, cw*h*nc)
		for yy := 0; yy < h; yy++ {
			for x := 0; x < cw*nc; x++ {
				acc := int32(1 << 21)
				for y := 0; y < b[yy][1]; y++ {
					acc += int32(cur[(b[yy][0]+y)*cw*nc+x]) * kk[yy][y]
				}
				out[yy*cw*nc+x] = clip(acc)
			}
		}
		cur, chh = out, h
	}
	_ = chh
	return cur
}

func TestResizeMatchesNaivePillow(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	sizes := [][4]int{
		{500, 375, 341, 256}, {500, 375, 224, 224}, {451, 300, 224, 224},
		{64, 48, 20, 15}, {64, 48, 13, 47}, {30, 20, 31, 21}, {17, 9, 80, 50},
		{40, 30, 40, 7}, {40, 30, 9, 30}, {5, 3, 4, 2}, {3, 2, 1, 1}, {1, 1, 3, 3},
		{33, 21, 16, 10}, {33, 21, 11, 7}, {33, 21, 6, 5}, {96, 7, 24, 3},
	}
	for _, f := range []Filter{Bilinear, Bicubic, Lanczos, Box, Hamming} {
		for _, s := range sizes {
			src := rsRandomRGB(rng, s[0], s[1])
			want := rsNaiveResize(src.Pix, s[0], s[1], 3, s[2], s[3], f)
			if got := Resize(src, s[2], s[3], f); !bytes.Equal(got.Pix, want) {
				t.Errorf("%v %dx%d -> %dx%d: RGB differs from the naive Pillow transcription", f, s[0], s[1], s[2], s[3])
			}
			g := Grayscale(src)
			wantG := rsNaiveResize(g.Pix, s[0], s[1], 1, s[2], s[3], f)
			if got := ResizeGray(g, s[2], s[3], f); !bytes.Equal(got.Pix, wantG) {
				t.Errorf("%v %dx%d -> %dx%d: gray differs from the naive Pillow transcription", f, s[0], s[1], s[2], s[3])
			}
		}
	}
}
