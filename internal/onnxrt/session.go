package onnxrt

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"petbreed/internal/onnx"
)

// Options configure a Session.
type Options struct {
	// IntraOpThreads is the size of the thread pool that parallelizes one
	// operator; 0 means runtime.NumCPU().
	IntraOpThreads int
	// InterOpThreads is the size of the pool running independent operators
	// in parallel; 0 leaves ONNX Runtime's default.
	InterOpThreads int
	// NoSpin stops the intra-op threads from spin-waiting for work between
	// operators. Spinning makes a lone model a little faster, but burns the
	// cores that decoding goroutines running beside it need.
	NoSpin bool
	// NoMemPattern turns off ONNX Runtime's memory-pattern planning, which
	// preallocates each batch size's whole plan: a server running batches of
	// varying size keeps less memory (about 30 MB less at batch 32 for
	// MobileNetV2) at no measurable cost in speed.
	NoMemPattern bool
	// ExtraOutputs names internal tensors of the graph (a node's output, such
	// as a backbone's pooled features) to return after the model's own
	// outputs. The model is loaded with these added as graph outputs.
	ExtraOutputs []string
}

// TensorInfo describes a model input or output as ONNX Runtime sees it.
type TensorInfo struct {
	Name string
	// Type is the element type: "float32", "uint8", "int64"... (for a
	// non-tensor value, its kind: "sequence", "map"...).
	Type string
	// Shape has -1 for dynamic dimensions (such as the batch). It is empty
	// for a scalar, or when ONNX Runtime does not know the rank.
	Shape []int64
}

func (t TensorInfo) String() string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.FormatInt(d, 10)
	}
	return fmt.Sprintf("%s: %s[%s]", t.Name, t.Type, strings.Join(dims, ","))
}

// Metadata is the model metadata ONNX Runtime reports.
type Metadata struct {
	Producer    string
	GraphName   string
	Domain      string
	Description string
	Version     int64             // model_version; 0 when the model has none
	Custom      map[string]string // metadata_props
}

// Output is one output of a Run: its data, copied out of ONNX Runtime's
// memory into a fresh Go slice the caller owns. Exactly one of the data
// fields is set, the one matching Type.
type Output struct {
	Name  string
	Type  string // "float32", "uint8", "int8", "int32", "int64" or "float64"
	Shape []int64

	Float32 []float32
	Uint8   []uint8
	Int8    []int8
	Int32   []int32
	Int64   []int64
	Float64 []float64
}

// Session is a model loaded into ONNX Runtime. Its methods are safe for
// concurrent use: ONNX Runtime sessions allow concurrent runs, which then
// share the session's intra-op thread pool.
type Session struct {
	path     string
	inputs   []TensorInfo
	outputs  []TensorInfo
	metadata Metadata
	// scalar marks the outputs that are scalars: Run allocates those itself,
	// as onnxruntime_go cannot return a scalar that ONNX Runtime allocated.
	scalar []bool

	mu     sync.RWMutex // Run holds it for reading, Close for writing
	closed bool
	sess   *ort.DynamicAdvancedSession
}

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("onnxrt: session is closed")

// Open loads the ONNX model at path. It initializes ONNX Runtime (Load) if
// that was not done yet.
func Open(path string, opts Options) (*Session, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: open model: %w", err)
	}
	return open(path, data, true, opts)
}

// OpenData loads a model held in memory (for example one edited with package
// onnx); name identifies it in errors and Path. Weights in external data
// files are not supported this way.
func OpenData(name string, data []byte, opts Options) (*Session, error) {
	return open(name, data, false, opts)
}

func open(path string, data []byte, fromFile bool, opts Options) (*Session, error) {
	if _, err := Load(); err != nil {
		return nil, err
	}
	if opts.IntraOpThreads < 0 || opts.InterOpThreads < 0 {
		return nil, fmt.Errorf("onnxrt: negative thread count in %+v", opts)
	}
	var err error
	if len(opts.ExtraOutputs) > 0 {
		fromFile = false
		if data, err = onnx.ExposeOutputs(data, opts.ExtraOutputs...); err != nil {
			return nil, fmt.Errorf("onnxrt: load model %s: extra outputs: %w", path, err)
		}
	}
	// Check the format first (ONNX Runtime's own message for a file that is
	// not a model is only "Protobuf parsing failed"), and learn which outputs
	// the model declares as scalars.
	info, err := onnx.ParseInfo(data)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: load model %s: %w", path, err)
	}
	declared := map[string]onnx.ValueInfo{}
	for _, v := range info.Outputs {
		declared[v.Name] = v
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxrt: session options: %w", err)
	}
	defer so.Destroy()
	intra := opts.IntraOpThreads
	if intra == 0 {
		intra = runtime.NumCPU()
	}
	if err := so.SetIntraOpNumThreads(intra); err != nil {
		return nil, fmt.Errorf("onnxrt: session options: %w", err)
	}
	if opts.NoMemPattern {
		if err := so.SetMemPattern(false); err != nil {
			return nil, fmt.Errorf("onnxrt: session options: %w", err)
		}
	}
	if opts.NoSpin {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("onnxrt: session options: %w", err)
		}
	}
	if opts.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
			return nil, fmt.Errorf("onnxrt: session options: %w", err)
		}
	}

	// The IO description comes from the model's own graph declaration when
	// it is complete (the usual case). Otherwise (an output with no declared
	// type, such as an internal tensor exposed by ExtraOutputs) it comes from
	// ONNX Runtime, which onnxruntime_go only offers through a temporary
	// session: that loads the model a second time. Without extra outputs
	// ONNX Runtime loads the file itself, so that weights in external data
	// files beside it are found.
	var ins, outs []ort.InputOutputInfo
	s := &Session{path: path}
	var complete bool
	if s.inputs, s.outputs, complete = declaredInfos(info); !complete {
		if !fromFile {
			ins, outs, err = ort.GetInputOutputInfoWithONNXData(data)
		} else {
			ins, outs, err = ort.GetInputOutputInfoWithOptions(path, so)
		}
		if err != nil {
			return nil, fmt.Errorf("onnxrt: load model %s: %w", path, err)
		}
		s.inputs, s.outputs = tensorInfos(ins), tensorInfos(outs)
	}
	s.scalar = make([]bool, len(s.outputs))
	for i, o := range s.outputs {
		// ONNX Runtime reports no dimensions both for a scalar and for an
		// unknown rank; the model's declaration tells them apart.
		v, ok := declared[o.Name]
		s.scalar[i] = len(o.Shape) == 0 && ok && v.Shape != nil && len(v.Shape) == 0
	}
	inNames := make([]string, len(s.inputs))
	for i, x := range s.inputs {
		inNames[i] = x.Name
	}
	outNames := make([]string, len(s.outputs))
	for i, x := range s.outputs {
		outNames[i] = x.Name
	}
	if len(inNames) == 0 || len(outNames) == 0 {
		return nil, fmt.Errorf("onnxrt: load model %s: the model has %d inputs and %d outputs", path, len(inNames), len(outNames))
	}
	if !fromFile {
		s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, inNames, outNames, so)
	} else {
		s.sess, err = ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
	}
	if err != nil {
		return nil, fmt.Errorf("onnxrt: load model %s: %w", path, err)
	}
	if s.metadata, err = readMetadata(s.sess); err != nil {
		s.sess.Destroy()
		return nil, fmt.Errorf("onnxrt: load model %s: metadata: %w", path, err)
	}
	return s, nil
}

// declaredInfos describes the graph's inputs and outputs as the model
// declares them; complete is false when one is not a tensor of known type
// and rank.
func declaredInfos(info *onnx.ModelInfo) (ins, outs []TensorInfo, complete bool) {
	conv := func(vs []onnx.ValueInfo) ([]TensorInfo, bool) {
		out := make([]TensorInfo, len(vs))
		for i, v := range vs {
			if v.Kind != onnx.KindTensor || v.ElemType == 0 || v.Shape == nil {
				return nil, false
			}
			out[i] = TensorInfo{Name: v.Name, Type: v.ElemType.String(), Shape: v.Dims()}
		}
		return out, true
	}
	ins, okIn := conv(info.Inputs)
	outs, okOut := conv(info.Outputs)
	return ins, outs, okIn && okOut
}

func tensorInfos(in []ort.InputOutputInfo) []TensorInfo {
	out := make([]TensorInfo, len(in))
	for i, x := range in {
		t := TensorInfo{Name: x.Name, Shape: append([]int64{}, x.Dimensions...)}
		switch x.OrtValueType {
		case ort.ONNXTypeTensor, ort.ONNXTypeSparseTensor:
			t.Type = typeName(x.DataType)
		default:
			t.Type = strings.ToLower(x.OrtValueType.String())
		}
		out[i] = t
	}
	return out
}

// typeName names an ONNX Runtime element type the way package onnx does:
// ONNX Runtime's enum has onnx.proto's TensorProto.DataType values.
func typeName(t ort.TensorElementDataType) string {
	if t >= 0 && t <= ort.TensorElementDataTypeInt4 {
		return onnx.DataType(t).String()
	}
	return "type" + strconv.Itoa(int(t))
}

func readMetadata(s *ort.DynamicAdvancedSession) (Metadata, error) {
	var md Metadata
	m, err := s.GetModelMetadata()
	if err != nil {
		return md, err
	}
	defer m.Destroy()
	if md.Producer, err = m.GetProducerName(); err != nil {
		return md, err
	}
	if md.GraphName, err = m.GetGraphName(); err != nil {
		return md, err
	}
	if md.Domain, err = m.GetDomain(); err != nil {
		return md, err
	}
	if md.Description, err = m.GetDescription(); err != nil {
		return md, err
	}
	if md.Version, err = m.GetVersion(); err != nil {
		return md, err
	}
	if md.Version == math.MaxInt64 { // ONNX Runtime's "no model_version"
		md.Version = 0
	}
	keys, err := m.GetCustomMetadataMapKeys()
	if err != nil {
		return md, err
	}
	md.Custom = make(map[string]string, len(keys))
	for _, k := range keys {
		v, ok, err := m.LookupCustomMetadataMap(k)
		if err != nil {
			return md, fmt.Errorf("key %q: %w", k, err)
		}
		if ok {
			md.Custom[k] = v
		}
	}
	return md, nil
}

// Inputs describes the model's inputs, as read from the model.
func (s *Session) Inputs() []TensorInfo { return cloneInfos(s.inputs) }

// Outputs describes what Run returns: the model's outputs, then the
// ExtraOutputs.
func (s *Session) Outputs() []TensorInfo { return cloneInfos(s.outputs) }

// Metadata returns the model's metadata, read when it was opened.
func (s *Session) Metadata() Metadata {
	md := s.metadata
	md.Custom = make(map[string]string, len(s.metadata.Custom))
	for k, v := range s.metadata.Custom {
		md.Custom[k] = v
	}
	return md
}

// CustomKeys returns the keys of m.Custom, sorted.
func (m Metadata) CustomKeys() []string {
	keys := make([]string, 0, len(m.Custom))
	for k := range m.Custom {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneInfos(in []TensorInfo) []TensorInfo {
	out := make([]TensorInfo, len(in))
	for i, t := range in {
		t.Shape = append([]int64{}, t.Shape...)
		out[i] = t
	}
	return out
}

// Run runs the model on one float32 input tensor of the given shape, whose
// elements input holds in row-major order; for an image model, typically
// [batch, 3, height, width]. The shape must match the model's input: same
// rank, same size in every fixed dimension, any positive size in a dynamic
// one (-1, such as the batch), and len(input) must be the product of the
// shape. Run does not copy input (ONNX Runtime reads it in place, so the
// caller can reuse one buffer) and does not keep it after returning.
//
// It returns every output, in the order of Outputs(), with its shape.
func (s *Session) Run(input []float32, shape []int64) ([]Output, error) {
	if len(s.inputs) != 1 {
		return nil, fmt.Errorf("onnxrt: %s has %d inputs; Run takes models with one", s.path, len(s.inputs))
	}
	in := s.inputs[0]
	if in.Type != "float32" {
		return nil, fmt.Errorf("onnxrt: input %q of %s is %s; Run takes float32", in.Name, s.path, in.Type)
	}
	if err := checkShape(in, shape, len(input)); err != nil {
		return nil, fmt.Errorf("onnxrt: %s: %w", s.path, err)
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}

	// ONNX Runtime keeps a pointer to input in the OrtValue; pin it so that
	// the cgo rules allow that for as long as the value lives.
	var pin runtime.Pinner
	pin.Pin(&input[0])
	defer pin.Unpin()
	t, err := ort.NewTensor(ort.Shape(shape), input)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: input tensor: %w", err)
	}
	defer t.Destroy()

	// Outputs left nil are allocated by ONNX Runtime during the run, and
	// onnxruntime_go copies each into a Go-backed tensor. Destroying those
	// releases the ORT values; their Go slices stay valid and become ours.
	vals := make([]ort.Value, len(s.outputs))
	defer func() {
		for _, v := range vals {
			destroy(v)
		}
	}()
	for i, isScalar := range s.scalar {
		if isScalar {
			if vals[i], err = newScalar(s.outputs[i].Type); err != nil {
				return nil, fmt.Errorf("onnxrt: output %q: %w", s.outputs[i].Name, err)
			}
		}
	}
	if err := s.sess.Run([]ort.Value{t}, vals); err != nil {
		return nil, fmt.Errorf("onnxrt: run %s: %w", s.path, err)
	}
	outs := make([]Output, len(vals))
	for i, v := range vals {
		o := &outs[i]
		o.Name = s.outputs[i].Name
		if v == nil {
			return nil, fmt.Errorf("onnxrt: run %s: output %q was not produced", s.path, o.Name)
		}
		o.Shape = append([]int64{}, v.GetShape()...)
		switch x := v.(type) {
		case *ort.Scalar[float32]:
			o.Type, o.Float32 = "float32", []float32{x.GetData()}
		case *ort.Scalar[uint8]:
			o.Type, o.Uint8 = "uint8", []uint8{x.GetData()}
		case *ort.Scalar[int8]:
			o.Type, o.Int8 = "int8", []int8{x.GetData()}
		case *ort.Scalar[int32]:
			o.Type, o.Int32 = "int32", []int32{x.GetData()}
		case *ort.Scalar[int64]:
			o.Type, o.Int64 = "int64", []int64{x.GetData()}
		case *ort.Scalar[float64]:
			o.Type, o.Float64 = "float64", []float64{x.GetData()}
		case *ort.Tensor[float32]:
			o.Type, o.Float32 = "float32", x.GetData()
		case *ort.Tensor[uint8]:
			o.Type, o.Uint8 = "uint8", x.GetData()
		case *ort.Tensor[int8]:
			o.Type, o.Int8 = "int8", x.GetData()
		case *ort.Tensor[int32]:
			o.Type, o.Int32 = "int32", x.GetData()
		case *ort.Tensor[int64]:
			o.Type, o.Int64 = "int64", x.GetData()
		case *ort.Tensor[float64]:
			o.Type, o.Float64 = "float64", x.GetData()
		default:
			return nil, fmt.Errorf("onnxrt: run %s: output %q is a %s of %s, which Run does not return",
				s.path, o.Name, strings.ToLower(v.GetONNXType().String()), typeName(ort.TensorElementDataType(v.DataType())))
		}
	}
	return outs, nil
}

// newScalar allocates a scalar output of the named element type.
func newScalar(typ string) (ort.Value, error) {
	switch typ {
	case "float32":
		return ort.NewEmptyScalar[float32]()
	case "uint8":
		return ort.NewEmptyScalar[uint8]()
	case "int8":
		return ort.NewEmptyScalar[int8]()
	case "int32":
		return ort.NewEmptyScalar[int32]()
	case "int64":
		return ort.NewEmptyScalar[int64]()
	case "float64":
		return ort.NewEmptyScalar[float64]()
	}
	return nil, fmt.Errorf("scalar of type %s is not supported", typ)
}

// destroy releases v, which may be nil or, after a failed run, a non-nil
// interface holding a nil pointer (onnxruntime_go returns those).
func destroy(v ort.Value) {
	if v == nil {
		return
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return
	}
	v.Destroy()
}

// checkShape validates an input shape against the model's input in and the
// number of elements n the caller passed.
func checkShape(in TensorInfo, shape []int64, n int) error {
	if len(in.Shape) > 0 && len(shape) != len(in.Shape) {
		return fmt.Errorf("input %q: shape %v has rank %d, the model wants %d (%v)",
			in.Name, shape, len(shape), len(in.Shape), in.Shape)
	}
	if len(shape) == 0 {
		return fmt.Errorf("input %q: empty shape", in.Name)
	}
	size := int64(1)
	for i, d := range shape {
		if d <= 0 {
			return fmt.Errorf("input %q: shape %v: dimension %d is %d, must be positive", in.Name, shape, i, d)
		}
		if i < len(in.Shape) && in.Shape[i] >= 0 && d != in.Shape[i] {
			return fmt.Errorf("input %q: shape %v does not match the model's %v in dimension %d",
				in.Name, shape, in.Shape, i)
		}
		if size > (1<<62)/d {
			return fmt.Errorf("input %q: shape %v is too large", in.Name, shape)
		}
		size *= d
	}
	if size != int64(n) {
		return fmt.Errorf("input %q: shape %v needs %d values, got %d", in.Name, shape, size, n)
	}
	return nil
}

// Close releases the session. Runs in progress finish first; later ones
// return ErrClosed. Close is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.sess.Destroy(); err != nil {
		return fmt.Errorf("onnxrt: close %s: %w", s.path, err)
	}
	return nil
}
