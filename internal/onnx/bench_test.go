package onnx

import (
	"testing"

	"petbreed/internal/testassets"
)

// The costs of inspect (ParseInfo) and of export (FindFeatures + Export) on
// the real backbones: `go test -run - -bench . ./internal/onnx/`.

func BenchmarkParseInfo(b *testing.B) {
	for _, file := range []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"} {
		data := testassets.Read(b, "backbone", file)
		b.Run(file, func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseInfo(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkExport(b *testing.B) {
	for _, file := range []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"} {
		data := testassets.Read(b, "backbone", file)
		b.Run(file, func(b *testing.B) {
			const classes = 37
			for b.Loop() {
				f, err := FindFeatures(data)
				if err != nil {
					b.Fatal(err)
				}
				w, bias := make([]float32, classes*f.Dim), make([]float32, classes)
				if _, err := Export(data, f, w, bias, classes, map[string]string{"k": "v"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
