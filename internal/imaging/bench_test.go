package imaging

import (
	"bytes"
	"image/jpeg"
	"math/rand"
	"testing"

	"petbreed"
	"petbreed/internal/testassets"
)

// rsBenchImage is a deterministic 500x375 photo-sized noise image.
func rsBenchImage() *RGB {
	return rsRandomRGB(rand.New(rand.NewSource(42)), 500, 375)
}

func BenchmarkApplyCrop(b *testing.B) {
	src := rsBenchImage()
	p := petbreed.DefaultPreprocess()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(src, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCropTensor is the whole per-image CPU path before the
// model: decode a 500x375 JPEG, torchvision's crop transform, and the
// normalised NCHW tensor. Goal: at most 2 ms on one core.
//   - q90: the dataset photo Abyssinian_105.jpg re-encoded at quality 90
//     (4:2:0, 38 KB), the server benchmark's image;
//   - dataset: the file as the dataset has it (4:4:4, 142 KB: heavier).
func BenchmarkDecodeCropTensor(b *testing.B) {
	b.Run("q90", func(b *testing.B) { benchDecodeCropTensor(b, benchJPEGQ90(b)) })
	b.Run("dataset", func(b *testing.B) {
		benchDecodeCropTensor(b, testassets.Read(b, "pets-3breeds", "images", "Abyssinian_105.jpg"))
	})
}

// benchJPEGQ90 is a real 500x375 photo encoded as a quality-90 JPEG.
func benchJPEGQ90(b *testing.B) []byte {
	img, _, err := Decode(testassets.Read(b, "pets-3breeds", "images", "Abyssinian_105.jpg"), DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, img, FormatJPEG, 90); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchDecodeCropTensor(b *testing.B, data []byte) {
	p := petbreed.DefaultPreprocess()
	nz := NewNormalizer(p.Mean, p.Std)
	dst := make([]float32, 3*224*224)
	b.ReportAllocs()
	for b.Loop() {
		img, _, err := Decode(data, DecodeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if img.W != 500 || img.H != 375 {
			b.Fatalf("decoded %dx%d, want 500x375", img.W, img.H)
		}
		m, err := Apply(img, p)
		if err != nil {
			b.Fatal(err)
		}
		if err := nz.Normalize(m, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJPEG is the decoder alone on the quality-90 photo.
func BenchmarkDecodeJPEG(b *testing.B) {
	data := benchJPEGQ90(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(data, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyCropNormalize(b *testing.B) {
	src := rsBenchImage()
	p := petbreed.DefaultPreprocess()
	nz := NewNormalizer(p.Mean, p.Std)
	dst := make([]float32, 3*224*224)
	b.ReportAllocs()
	for b.Loop() {
		m, err := Apply(src, p)
		if err != nil {
			b.Fatal(err)
		}
		if err := nz.Normalize(m, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	src := rsRandomRGB(rand.New(rand.NewSource(43)), 224, 224)
	dst := make([]float32, 3*224*224)
	b.ReportAllocs()
	for b.Loop() {
		if err := Normalize(src, petbreed.ImageNetMean, petbreed.ImageNetStd, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizeCached(b *testing.B) {
	src := rsRandomRGB(rand.New(rand.NewSource(43)), 224, 224)
	dst := make([]float32, 3*224*224)
	nz := NewNormalizer(petbreed.ImageNetMean, petbreed.ImageNetStd)
	b.ReportAllocs()
	for b.Loop() {
		if err := nz.Normalize(src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResizeSquash(b *testing.B) {
	src := rsBenchImage()
	for _, f := range []Filter{Bilinear, Bicubic, Lanczos, Nearest} {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Resize(src, 224, 224, f)
			}
		})
	}
}

func BenchmarkApplyCropGray(b *testing.B) {
	src := rsBenchImage()
	p := petbreed.DefaultPreprocess()
	p.Grayscale = true
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(src, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasses times the two passes of the crop transform of a 500x375
// image alone (horizontal: 329 source rows x 224 output columns, 3 taps;
// vertical: 224 x 224 x 3 bytes, 3 taps).
func BenchmarkPasses(b *testing.B) {
	src := rsBenchImage()
	b.Run("horizontal", func(b *testing.B) {
		hw := computeWeights(500, 341, 58, 282, Bilinear)
		dst := make([]uint8, 224*3*329)
		for b.Loop() {
			hpass(dst, src.Pix[23*1500:352*1500], 1500, 3, 329, hw)
		}
	})
	b.Run("vertical", func(b *testing.B) {
		vw := computeWeights(375, 256, 16, 240, Bilinear)
		for i := range vw.start {
			vw.start[i] -= 23
		}
		dst := make([]uint8, 224*3*224)
		for b.Loop() {
			vpass(dst, src.Pix[:672*329], 672, 0, 672, vw)
		}
	})
}

// BenchmarkDecodeJPEGStdlib is Go's image/jpeg on the same photo, for the
// record of why petbreed uses libjpeg-turbo (docs/design.md).
func BenchmarkDecodeJPEGStdlib(b *testing.B) {
	data := benchJPEGQ90(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
