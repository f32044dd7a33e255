package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"

	"petbreed/internal/imaging"
)

// Reading request bodies: plain functions of a reader (the fuzz targets
// call them), charging what they hold to the request's share of the memory
// budget before they allocate it.

// sniffLen is enough of an image's first bytes for imaging.Sniff.
const sniffLen = 16

// minRead is the least room a body buffer is grown by while reading a body
// of unknown length.
const minRead = 32 << 10

// readBody reads r into a pooled buffer that starts with prefix. size is
// the body's declared length (Content-Length; -1 when unknown): its bytes
// are charged to ch at once, else the buffer's capacity is charged as it
// grows. A body whose charge alone is over the budget fails with 413.
func readBody(r io.Reader, prefix []byte, size int64, ch *charge) (*bytes.Buffer, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	var charged int64
	fail := func(err error) (*bytes.Buffer, error) {
		ch.shrink(charged)
		putBody(buf)
		return nil, err
	}
	// reserve charges for a capacity of at least want (a little more: the
	// buffer may round up).
	reserve := func(want int64) error {
		if want <= charged {
			return nil
		}
		if err := ch.grow(want - charged); err != nil {
			return err
		}
		charged = want
		return nil
	}
	if size > 0 {
		if err := reserve(size + int64(bytes.MinRead)); err != nil {
			return fail(bodyBudgetError(err))
		}
		buf.Grow(int(size) + bytes.MinRead)
	}
	if err := reserve(int64(buf.Cap())); err != nil {
		return fail(bodyBudgetError(err))
	}
	buf.Write(prefix)
	for {
		// A declared length was made room for (and a little more, for the
		// read that finds the end); else grow while a good chunk is left.
		if buf.Available() == 0 || (size <= 0 && buf.Available() < minRead/2) {
			// bytes.Buffer grows to at most twice its capacity plus the
			// room asked for: charge that before it allocates.
			if err := reserve(2*int64(buf.Cap()) + minRead); err != nil {
				return fail(bodyBudgetError(err))
			}
			buf.Grow(minRead)
		}
		b := buf.AvailableBuffer()[:buf.Available()]
		n, err := r.Read(b)
		buf.Write(b[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(bodyError(err))
		}
	}
	// Keep the charge to what the buffer holds.
	if c := int64(buf.Cap()); c < charged {
		ch.shrink(charged - c)
	}
	return buf, nil
}

// bodyBudgetError maps a failure to charge a body to the budget: 413 for a
// body that alone is over it, 503 (or the context's error) else.
func bodyBudgetError(err error) error {
	var ob errOverBudget
	if errors.As(err, &ob) {
		return errorf(http.StatusRequestEntityTooLarge, "payload too large", "the body %v", ob)
	}
	return err
}

// sniffImage reads the first bytes of an image and refuses, before the rest
// is read, anything that is not an image (415). It returns the bytes read;
// fewer than sniffLen only when the body is shorter (empty: none).
func sniffImage(r io.Reader) ([]byte, error) {
	var b [sniffLen]byte
	n, err := io.ReadFull(r, b[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, bodyError(err)
	}
	if n == 0 {
		return nil, nil
	}
	if _, err := imaging.Sniff(b[:n]); err != nil {
		return nil, imageError(err)
	}
	return b[:n], nil
}

// readRawImage reads an image sent as the whole body: its first bytes are
// sniffed (415 at once for what is not an image), then the rest is read.
// An empty body gives an empty buffer.
func readRawImage(r io.Reader, size int64, ch *charge) (*bytes.Buffer, error) {
	prefix, err := sniffImage(r)
	if err != nil {
		return nil, err
	}
	if len(prefix) < sniffLen {
		size = -1 // the whole body is the prefix (or the declared length lied)
	}
	return readBody(r, prefix, size, ch)
}

// readMultipartImage reads the image in the multipart/form-data field
// "file" (as the original API takes it), sniffing its first bytes before
// reading the rest. size bounds the part (the body's Content-Length, -1
// when unknown). The filename is the part's, when it has one.
func readMultipartImage(r io.Reader, boundary string, size int64, ch *charge) (*bytes.Buffer, string, error) {
	if boundary == "" {
		return nil, "", errorf(http.StatusBadRequest, "bad multipart body", "no boundary in the content type")
	}
	mr := multipart.NewReader(r, boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, "", errorf(http.StatusBadRequest, "bad multipart body", `no field "file" (the image)`)
		}
		if err != nil {
			return nil, "", multipartError(err)
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		filename := part.FileName()
		prefix, err := sniffImage(part)
		if err != nil {
			return nil, "", multipartError(err)
		}
		if len(prefix) < sniffLen {
			size = -1
		}
		buf, err := readBody(part, prefix, size, ch)
		if err != nil {
			return nil, "", multipartError(err)
		}
		return buf, filename, nil
	}
}

func multipartError(err error) error {
	var mbe *http.MaxBytesError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return bodyError(err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return errorf(http.StatusBadRequest, "bad multipart body", "%v", err)
}
