package imaging

import (
	"bytes"
	"image"
	"math"
	"math/rand"
	"testing"

	"petbreed"
)

func rsDefaultPreprocess() petbreed.Preprocess { return petbreed.DefaultPreprocess() }

func TestCenterCropBox(t *testing.T) {
	for _, tc := range []struct {
		w, h, size int
		want       image.Rectangle
	}{
		{384, 256, 224, image.Rect(80, 16, 304, 240)},
		{256, 256, 224, image.Rect(16, 16, 240, 240)},
		{224, 224, 224, image.Rect(0, 0, 224, 224)},
		// Python round is half to even: (225-224)/2 = 0.5 -> 0,
		// (227-224)/2 = 1.5 -> 2, (229-224)/2 = 2.5 -> 2, 3.5 -> 4.
		{225, 224, 224, image.Rect(0, 0, 224, 224)},
		{227, 224, 224, image.Rect(2, 0, 226, 224)},
		{229, 224, 224, image.Rect(2, 0, 226, 224)},
		{231, 233, 224, image.Rect(4, 4, 228, 228)},
		{455, 256, 224, image.Rect(116, 16, 340, 240)}, // 115.5 -> 116
		{453, 256, 224, image.Rect(114, 16, 338, 240)}, // 114.5 -> 114
		// Smaller than the crop: torchvision pads (size-dim)//2 before.
		{200, 224, 224, image.Rect(-12, 0, 212, 224)},
		{201, 300, 224, image.Rect(-11, 38, 213, 262)},
		{100, 50, 224, image.Rect(-62, -87, 162, 137)},
	} {
		if got := CenterCropBox(tc.w, tc.h, tc.size); got != tc.want {
			t.Errorf("CenterCropBox(%d, %d, %d) = %v, want %v", tc.w, tc.h, tc.size, got, tc.want)
		}
	}
}

func TestShortSideSize(t *testing.T) {
	for _, tc := range []struct{ w, h, s, ww, wh int }{
		{451, 300, 256, 384, 256}, // 384.85 -> 384
		{1280, 720, 256, 455, 256},
		{300, 451, 256, 256, 384},
		{500, 375, 256, 341, 256},
		{256, 256, 256, 256, 256},
		{100, 100, 256, 256, 256},
		{256, 700, 256, 256, 700}, // already right: unchanged
		{3, 1000, 256, 256, 85333},
	} {
		w, h := ShortSideSize(tc.w, tc.h, tc.s)
		if w != tc.ww || h != tc.wh {
			t.Errorf("ShortSideSize(%d, %d, %d) = %d, %d, want %d, %d", tc.w, tc.h, tc.s, w, h, tc.ww, tc.wh)
		}
	}
}

func TestGrayscale(t *testing.T) {
	src := &RGB{W: 5, H: 1, Pix: []uint8{
		255, 255, 255,
		0, 0, 0,
		255, 0, 0,
		0, 255, 0,
		12, 200, 77,
	}}
	g := Grayscale(src)
	for i, want := range []uint8{
		255, 0,
		uint8((255*19595 + 0x8000) >> 16),
		uint8((255*38470 + 0x8000) >> 16),
		uint8((12*19595 + 200*38470 + 77*7471 + 0x8000) >> 16),
	} {
		if g.Pix[i] != want {
			t.Errorf("pixel %d: L = %d, want %d", i, g.Pix[i], want)
		}
	}
	rgb := g.ToRGB()
	for i, v := range g.Pix {
		if !bytes.Equal(rgb.Pix[i*3:i*3+3], []uint8{v, v, v}) {
			t.Errorf("ToRGB pixel %d = %v", i, rgb.Pix[i*3:i*3+3])
		}
	}
}

func TestNormalizeBitExact(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	src := rsRandomRGB(rng, 40, 30)
	for i := 0; i < 256*3 && i < len(src.Pix); i++ { // every value in every channel
		src.Pix[i] = uint8(i / 3)
	}
	for _, ms := range []struct{ mean, std [3]float32 }{
		{petbreed.ImageNetMean, petbreed.ImageNetStd},
		{[3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5}},
		{[3]float32{0, 0, 0}, [3]float32{1, 1, 1}},
		{[3]float32{0.1234567, 0.9, -0.3}, [3]float32{0.0713, 3.1, 0.27}},
	} {
		n := src.W * src.H
		dst := make([]float32, 3*n)
		if err := Normalize(src, ms.mean, ms.std, dst); err != nil {
			t.Fatal(err)
		}
		for c := 0; c < 3; c++ {
			for i := 0; i < n; i++ {
				// The direct float32 formula: ToTensor then Normalize.
				x := float32(src.Pix[i*3+c]) / float32(255)
				x = x - ms.mean[c]
				want := x / ms.std[c]
				if got := dst[c*n+i]; math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("mean %v std %v c %d v %d: %v (%08x), want %v (%08x)", ms.mean, ms.std, c,
						src.Pix[i*3+c], got, math.Float32bits(got), want, math.Float32bits(want))
				}
			}
		}
	}
	// A known value: (0/255 - 0.485) / 0.229.
	if got, want := NewNormalizer(petbreed.ImageNetMean, petbreed.ImageNetStd).lut[0][0], float32(-0.485)/float32(0.229); got != want {
		t.Errorf("lut[0][0] = %v, want %v", got, want)
	}
}

func TestNormalizeDstLength(t *testing.T) {
	src := NewRGB(4, 3)
	nz := NewNormalizer(petbreed.ImageNetMean, petbreed.ImageNetStd)
	for _, n := range []int{0, 35, 37, 72} {
		if err := nz.Normalize(src, make([]float32, n)); err == nil {
			t.Errorf("dst of %d values accepted for a 4x3 image", n)
		}
	}
	if err := nz.Normalize(src, make([]float32, 36)); err != nil {
		t.Error(err)
	}
	if err := nz.Normalize(&RGB{W: 2, H: 2, Pix: make([]uint8, 5)}, make([]float32, 12)); err == nil {
		t.Error("malformed image accepted")
	}
	// dst is a window of a batch tensor: values outside it are untouched.
	batch := make([]float32, 2*36+2)
	for i := range batch {
		batch[i] = 42
	}
	if err := nz.Normalize(src, batch[37:37+36]); err != nil {
		t.Fatal(err)
	}
	if batch[36] != 42 || batch[37+36] != 42 {
		t.Error("Normalize wrote outside dst")
	}
}

func TestApply(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	src := rsRandomRGB(rng, 500, 375)
	p := petbreed.DefaultPreprocess()

	got, err := Apply(src, p)
	if err != nil {
		t.Fatal(err)
	}
	want := Crop(Resize(src, 341, 256, Bilinear), image.Rect(58, 16, 282, 240))
	if got.W != 224 || got.H != 224 || !bytes.Equal(got.Pix, want.Pix) {
		t.Errorf("Apply(crop) != Crop(Resize(341x256), centre 224)")
	}

	// Short side already equal to Resize: no resample, only the crop.
	src2 := rsRandomRGB(rng, 256, 300)
	got, err = Apply(src2, p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, Crop(src2, CenterCropBox(256, 300, 224)).Pix) {
		t.Error("Apply resampled an image whose short side is already 256")
	}

	// Squash with each filter.
	for _, f := range []string{"bilinear", "bicubic", "lanczos", "nearest"} {
		q := p
		q.Mode, q.Filter = petbreed.ModeSquash, f
		got, err := Apply(src, q)
		if err != nil {
			t.Fatal(err)
		}
		fl, _ := ParseFilter(f)
		if !bytes.Equal(got.Pix, Resize(src, 224, 224, fl).Pix) {
			t.Errorf("Apply(squash %s) != Resize", f)
		}
	}

	// Grayscale: convert('L'), resize, crop, replicate.
	q := p
	q.Grayscale = true
	got, err = Apply(src, q)
	if err != nil {
		t.Fatal(err)
	}
	wantG := CropGray(ResizeGray(Grayscale(src), 341, 256, Bilinear), image.Rect(58, 16, 282, 240)).ToRGB()
	if !bytes.Equal(got.Pix, wantG.Pix) {
		t.Error("Apply(gray crop) mismatch")
	}

	// Errors.
	bad := p
	bad.Filter = "sinc"
	if _, err := Apply(src, bad); err == nil {
		t.Error("unknown filter accepted")
	}
	bad = p
	bad.Mode = "stretch"
	if _, err := Apply(src, bad); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := Apply(&RGB{W: 3, H: 3, Pix: make([]uint8, 4)}, p); err == nil {
		t.Error("malformed image accepted")
	}
	if _, err := Apply(&RGB{}, p); err == nil {
		t.Error("empty image accepted")
	}
}
