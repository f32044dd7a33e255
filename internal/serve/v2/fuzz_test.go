package v2

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"testing"

	"petbreed/internal/httpjson"
	"petbreed/internal/serve/protocol"
)

// Fuzz targets for the inference request parser: whatever the bytes, it
// never panics, fails only with a client error (4xx), and what it accepts
// satisfies the invariants the handler relies on.

const fuzzBudget = 64 << 20

// fakeCharge counts what the parser charges, within a limit.
type fakeCharge struct{ held, limit int64 }

func (c *fakeCharge) grow(n int64) error {
	if c.held+n > c.limit {
		return protocol.OverBudget{Need: c.held + n, Limit: c.limit}
	}
	c.held += n
	return nil
}

// clientError fails unless err is an *httpjson.Error or *v2Error with a
// 4xx status.
func clientError(t *testing.T, err error) {
	t.Helper()
	var ae *httpjson.Error
	var ve *v2Error
	switch {
	case errors.As(err, &ae):
		if ae.Status < 400 || ae.Status > 499 {
			t.Fatalf("status %d: %v", ae.Status, err)
		}
	case errors.As(err, &ve):
		if ve.status < 400 || ve.status > 499 {
			t.Fatalf("status %d: %v", ve.status, err)
		}
	default:
		t.Fatalf("%T is not a client error: %v", err, err)
	}
}

// smallPNG is a 3x2 PNG.
func smallPNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func itoa(i int) string { return strconv.Itoa(i) }

// fuzzSpec is a small model: FP32 [N,3,4,4], at most 4 images.
var fuzzSpec = inputSpec{name: "input", size: 4, maxN: 4}

// checkInfer parses an inference request and decodes its input as the
// server does, and checks what is accepted against the shapes.
func checkInfer(t *testing.T, body []byte, headerLen string) {
	ch := &fakeCharge{limit: fuzzBudget}
	call, err := parseInferRequest(body, headerLen)
	if err != nil {
		clientError(t, err)
		return
	}
	if (call.data == nil) == (len(call.in.Data) == 0) {
		t.Fatalf("binary data %v and JSON data %d bytes: want exactly one", call.data != nil, len(call.in.Data))
	}
	p, err := fuzzSpec.payload(call.in, call.data, ch.grow, nil)
	if err != nil {
		var ob protocol.OverBudget
		if !errors.As(err, &ob) {
			clientError(t, err)
		}
		return
	}
	if p.n < 1 || p.n > fuzzSpec.maxN || int64(p.n) != call.in.Shape[0] {
		t.Fatalf("accepted %d images for shape %v", p.n, call.in.Shape)
	}
	switch call.in.Datatype {
	case "FP32":
		if len(p.tensor) != p.n*3*4*4 || p.images != nil {
			t.Fatalf("FP32 %v: %d values", call.in.Shape, len(p.tensor))
		}
		for _, v := range p.tensor {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatal("accepted a NaN or infinity")
			}
		}
	case "BYTES":
		if len(p.images) != p.n || p.tensor != nil {
			t.Fatalf("BYTES %v: %d images", call.in.Shape, len(p.images))
		}
		for i, img := range p.images {
			if len(img) == 0 {
				t.Fatalf("element %d is empty", i)
			}
		}
	default:
		t.Fatalf("accepted datatype %q", call.in.Datatype)
	}
	if ch.held < 4*int64(len(p.tensor)) {
		t.Fatalf("holds %d bytes for a %d-value tensor", ch.held, len(p.tensor))
	}
}

func FuzzParseInferJSON(f *testing.F) {
	img := b64(smallPNG(f))
	zeros := "[" + string(bytes.Repeat([]byte("0,"), 47)) + "0]"
	for _, s := range []string{
		`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img + `"]}]}`,
		`{"inputs":[{"name":"image","datatype":"BYTES","shape":[2,1],"data":[["` + img + `"],[{"b64":"` + img + `"}]]}]}`,
		`{"id":"x","inputs":[{"name":"input","datatype":"FP32","shape":[1,3,4,4],"data":` + zeros + `}],"outputs":[{"name":"p","parameters":{"classification":2}}]}`,
		`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[1,2,3]}]}`,
		`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,4,4],"data":[1e40]}]}`,
		`{"inputs":[]}`,
		`{"inputs":[{}]} trailing`,
		`[[[[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkInfer(t, body, "") })
}

func FuzzParseInferBinary(f *testing.F) {
	le := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	png := smallPNG(f)
	elem := binary.LittleEndian.AppendUint32(nil, uint32(len(png)))
	elem = append(elem, png...)
	f.Add([]byte(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":`+itoa(len(elem))+`}}]}`), elem)
	f.Add([]byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,4,4],"parameters":{"binary_data_size":192}}]}`), le(make([]float32, 48)...))
	f.Add([]byte(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":8}}]}`), []byte{255, 255, 255, 255, 0, 0, 0, 0})
	f.Add([]byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,4,4],"parameters":{"binary_data_size":4}}]}`), le(float32(math.NaN())))
	f.Fuzz(func(t *testing.T, header, bin []byte) {
		body := append(append([]byte{}, header...), bin...)
		checkInfer(t, body, itoa(len(header)))
	})
}
