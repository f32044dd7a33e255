package imaging

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/testassets"
)

// withAPP1 inserts an APP1 segment with payload after a JPEG's SOI.
func withAPP1(j, payload []byte) []byte {
	var b bytes.Buffer
	b.Write(j[:2])
	b.Write([]byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)})
	b.Write(payload)
	b.Write(j[2:])
	return b.Bytes()
}

func smallJPEG(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 24, 16)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEXIFMatchesPillow: for 318 EXIF blocks, hand-made and randomly
// mangled (bad types, counts of 0, 2 or 0xFFFFFFFF, offsets past the end,
// truncation, repeated tags), the orientation read from a JPEG is the one
// Pillow 9.4's ImageOps.exif_transpose applied to the same file
// (testdata/exif_pillow.py wrote the answers; where Pillow fails to open
// the file, petbreed ignores the EXIF block).
func TestEXIFMatchesPillow(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "exif_pillow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Name   string          `json:"name"`
			APP1   string          `json:"app1"`
			Pillow json.RawMessage `json:"pillow"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 300 {
		t.Fatalf("only %d cases", len(ref.Cases))
	}
	j := smallJPEG(t)
	rotated := 0
	for _, c := range ref.Cases {
		payload, err := hex.DecodeString(c.APP1)
		if err != nil {
			t.Fatal(err)
		}
		want := 1 // Pillow fails: no orientation
		if err := json.Unmarshal(c.Pillow, &want); err != nil && !strings.Contains(string(c.Pillow), "error") {
			t.Fatalf("%s: pillow answer %s", c.Name, c.Pillow)
		}
		if want != 1 {
			rotated++
		}
		if got := readOrientation(withAPP1(j, payload), FormatJPEG); got != want {
			t.Errorf("%s: orientation %d, Pillow %d (APP1 %s)", c.Name, got, want, c.APP1)
		}
	}
	if rotated < 50 {
		t.Errorf("only %d cases rotate: the table tests too little", rotated)
	}
}

// TestEXIFBadCount: an orientation entry with a wrong count, decoded from a
// real photo: count 0xFFFFFFFF points past the data and is ignored, as
// Pillow ignores it; count 2 still rotates (Pillow takes the first value).
func TestEXIFBadCount(t *testing.T) {
	var buf bytes.Buffer
	upright, _, err := Decode(testassets.Read(t, "photos", "chelsea.png"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Encode(&buf, upright, FormatJPEG, 90); err != nil {
		t.Fatal(err)
	}
	entry := func(typ uint16, count uint32) []byte {
		e := exifOrientation(6)
		e[12], e[13] = byte(typ>>8), byte(typ)
		e[14], e[15], e[16], e[17] = byte(count>>24), byte(count>>16), byte(count>>8), byte(count)
		return append([]byte("Exif\x00\x00"), e...)
	}
	tests := []struct {
		name     string
		typ      uint16
		count    uint32
		rotation int
	}{
		{"short count 1", 3, 1, 6},
		{"short count 0xFFFFFFFF", 3, 0xFFFFFFFF, 1},
		{"long count 0xFFFFFFFF", 4, 0xFFFFFFFF, 1},
		{"short count 0", 3, 0, 1},
		{"short count 2", 3, 2, 6},
		{"byte count 1", 1, 1, 1},
		{"undefined count 2", 7, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, info, err := Decode(withAPP1(buf.Bytes(), entry(tt.typ, tt.count)), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Orientation != tt.rotation {
				t.Errorf("orientation %d, want %d", info.Orientation, tt.rotation)
			}
			if rotated := img.W != upright.W; rotated != (tt.rotation == 6) {
				t.Errorf("decoded %dx%d from a %dx%d photo", img.W, img.H, upright.W, upright.H)
			}
		})
	}
}

// TestPNGEXIFChunks: which eXIf chunk of a PNG counts, as Pillow 9.4's
// exif_transpose(Image.open(f)) decides (checked with Pillow).
func TestPNGEXIFChunks(t *testing.T) {
	p := encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 3)))
	iend := len(p) - 12
	build := func(before, after []int, prefix string) []byte {
		var b bytes.Buffer
		b.Write(p[:33])
		for _, o := range before {
			testassets.PNGChunk(&b, "eXIf", append([]byte(prefix), exifOrientation(o)...))
		}
		b.Write(p[33:iend])
		for _, o := range after {
			testassets.PNGChunk(&b, "eXIf", exifOrientation(o))
		}
		b.Write(p[iend:])
		return b.Bytes()
	}
	tests := []struct {
		name          string
		before, after []int
		prefix        string
		want          int
	}{
		{"one before IDAT", []int{6}, nil, "", 6},
		{"two before: the last", []int{6, 3}, nil, "", 3},
		{"after IDAT only", nil, []int{8}, "", 8},
		{"two after: the last", nil, []int{6, 3}, "", 3},
		{"before wins over after", []int{6}, []int{3}, "", 6},
		{"Exif prefix in the chunk", []int{6}, nil, "Exif\x00\x00", 1},
		{"none", nil, nil, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readOrientation(build(tt.before, tt.after, tt.prefix), FormatPNG); got != tt.want {
				t.Errorf("orientation %d, want %d", got, tt.want)
			}
		})
	}
}
