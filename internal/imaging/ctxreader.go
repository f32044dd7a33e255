package imaging

import (
	"bytes"
	"context"
)

// ctxReader feeds a Go decoder from memory and fails its next read once ctx
// is done, so PNG, GIF and BMP decoding stops within one read of the input
// (the decoders read a few KB at a time).
type ctxReader struct {
	ctx context.Context
	r   *bytes.Reader
}

func newCtxReader(ctx context.Context, b []byte) *ctxReader {
	return &ctxReader{ctx: ctx, r: bytes.NewReader(b)}
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
