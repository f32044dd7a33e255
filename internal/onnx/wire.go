package onnx

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one decoded protobuf field of a message: its number, wire type
// and value. For the bytes wire type b is the payload (a sub-slice of the
// message, not a copy); for the numeric wire types v holds the value. raw is
// the whole field as encoded, tag included, so that a message can be copied
// field by field.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
	raw []byte
}

// eachField calls fn for every field of the encoded message msg, in the order
// they appear. Malformed input (a truncated varint, a length running past the
// end, an unknown wire type, a field number out of range) is an error, never
// a panic. Groups are skipped whole.
func eachField(msg []byte, fn func(f field) error) error {
	for off := 0; off < len(msg); {
		start := off
		num, typ, n := protowire.ConsumeTag(msg[off:])
		if n < 0 {
			return fmt.Errorf("at byte %d: %w", off, protowire.ParseError(n))
		}
		off += n
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(msg[off:])
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg[off:])
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(msg[off:])
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(msg[off:])
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg[off:])
		}
		if n < 0 {
			return fmt.Errorf("at byte %d (field %d): %w", off, num, protowire.ParseError(n))
		}
		off += n
		f.raw = msg[start:off]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// wireName names a wire type for error messages.
func wireName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "bytes"
	case protowire.StartGroupType, protowire.EndGroupType:
		return "group"
	}
	return fmt.Sprintf("wire type %d", t)
}

// bytesOf returns the payload of a length-delimited field, or an error naming
// the field (what) when the field has another wire type.
func (f field) bytesOf(what string) ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, fmt.Errorf("%s: %s field, want length-delimited", what, wireName(f.typ))
	}
	return f.b, nil
}

// stringOf is bytesOf as a string (a copy).
func (f field) stringOf(what string) (string, error) {
	b, err := f.bytesOf(what)
	return string(b), err
}

// intOf returns the value of a varint field as an int64 (protobuf int32 and
// int64 fields are both two's-complement varints).
func (f field) intOf(what string) (int64, error) {
	if f.typ != protowire.VarintType {
		return 0, fmt.Errorf("%s: %s field, want varint", what, wireName(f.typ))
	}
	return int64(f.v), nil
}

// int64sOf appends the values of a repeated int64 (or int32) field, packed or
// not, to dst.
func (f field) int64sOf(dst []int64, what string) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.v)), nil
	case protowire.BytesType:
		for b := f.b; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return dst, fmt.Errorf("%s: packed varints: %w", what, protowire.ParseError(n))
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return dst, fmt.Errorf("%s: %s field, want varint", what, wireName(f.typ))
}
