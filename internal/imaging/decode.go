package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"

	"golang.org/x/image/bmp"
)

// DefaultMaxPixels is Pillow's Image.MAX_IMAGE_PIXELS: the default
// decompression-bomb limit.
const DefaultMaxPixels = 89_478_485

// Errors a caller can test with errors.Is, e.g. to pick an HTTP status.
var (
	// ErrUnsupported: the bytes are not an image in a supported format
	// (JPEG, PNG, GIF, BMP, WebP), or are empty.
	ErrUnsupported = errors.New("not a supported image (JPEG, PNG, GIF, BMP or WebP)")
	// ErrPixelLimit: the header declares more pixels than the limit allows.
	ErrPixelLimit = errors.New("image over the pixel limit")
	// ErrCorrupt: the format is known but the data cannot be decoded
	// (truncated, corrupt).
	ErrCorrupt = errors.New("corrupt or truncated image")
	// ErrTooManyScans: a progressive JPEG has more scans than
	// DecodeOptions.MaxScans allows (each scan is a pass over the whole
	// image: thousands of them cost minutes of CPU from a small file).
	ErrTooManyScans = errors.New("too many scans")
)

// DefaultMaxScans is the default DecodeOptions.MaxScans. Ordinary
// progressive JPEGs have about 10 scans; encoders' most elaborate scripts
// stay well under 100.
const DefaultMaxScans = 100

// Format names, as Sniff returns them.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatBMP  = "bmp"
	FormatWebP = "webp"
)

// DecodeOptions configure Decode. The zero value is the default: Pillow's
// pixel limit, EXIF orientation applied.
type DecodeOptions struct {
	// MaxPixels refuses images whose header declares more pixels.
	// 0 means DefaultMaxPixels; negative means no limit.
	MaxPixels int64
	// IgnoreOrientation keeps the stored pixel order instead of applying
	// the EXIF orientation tag.
	IgnoreOrientation bool
	// MaxScans refuses progressive JPEGs with more scans (ErrTooManyScans).
	// 0 means DefaultMaxScans; negative means no limit.
	MaxScans int
}

func (o DecodeOptions) maxPixels() int64 {
	if o.MaxPixels == 0 {
		return DefaultMaxPixels
	}
	return o.MaxPixels
}

// maxScans is the scan limit to enforce, 0 for none.
func (o DecodeOptions) maxScans() int {
	switch {
	case o.MaxScans == 0:
		return DefaultMaxScans
	case o.MaxScans < 0:
		return 0
	}
	return o.MaxScans
}

// Info describes a decoded image.
type Info struct {
	Format      string `json:"format"`      // FormatJPEG, ...
	Mode        string `json:"mode"`        // Pillow's mode of the stored image: RGB, RGBA, L, LA, P, CMYK, I, 1
	Width       int    `json:"width"`       // as stored, before orientation
	Height      int    `json:"height"`      // as stored, before orientation
	Orientation int    `json:"orientation"` // EXIF orientation 1-8 (1 when absent)
}

// Sniff returns the format of an image from its first bytes, never from a
// file name or a content type.
func Sniff(b []byte) (string, error) {
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("%w: empty data", ErrUnsupported)
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return FormatJPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return FormatGIF, nil
	case len(b) >= 14 && b[0] == 'B' && b[1] == 'M':
		return FormatBMP, nil
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return FormatWebP, nil
	}
	return "", ErrUnsupported
}

// DecodeConfig sniffs the format and reads the size from the header only.
func DecodeConfig(b []byte) (format string, w, h int, err error) {
	format, err = Sniff(b)
	if err != nil {
		return "", 0, 0, err
	}
	if format == FormatJPEG {
		hdr, err := readJPEGHeader(b)
		if err != nil {
			return format, 0, 0, fmt.Errorf("%w: jpeg header: %v", ErrCorrupt, err)
		}
		return format, hdr.w, hdr.h, nil
	}
	var cfg image.Config
	r := bytes.NewReader(b)
	switch format {
	case FormatPNG:
		cfg, err = png.DecodeConfig(r)
	case FormatGIF:
		cfg, err = gif.DecodeConfig(r)
	case FormatBMP:
		cfg, err = bmp.DecodeConfig(r)
	case FormatWebP:
		cfg.Width, cfg.Height, err = decodeWebPConfig(b)
	}
	if err != nil {
		return format, 0, 0, fmt.Errorf("%w: %s header: %v", ErrCorrupt, format, err)
	}
	return format, cfg.Width, cfg.Height, nil
}

// Decode turns image bytes into RGB the way Pillow's
// Image.open(...).convert('RGB') does, after checking the pixel limit on the
// header, and applies the EXIF orientation unless told not to (as
// ImageOps.exif_transpose does).
func Decode(b []byte, opt DecodeOptions) (img *RGB, info Info, err error) {
	return DecodeContext(context.Background(), b, opt)
}

// DecodeContext is Decode bounded by ctx: when ctx is done the decoder stops
// as soon as it can and the error wraps ctx.Err(). libjpeg checks it before
// each row of work (its progress monitor); the Go decoders on each read of
// their input.
func DecodeContext(ctx context.Context, b []byte, opt DecodeOptions) (img *RGB, info Info, err error) {
	if err := ctx.Err(); err != nil {
		return nil, Info{}, fmt.Errorf("decode not started: %w", err)
	}
	format, w, h, err := DecodeConfig(b)
	if err != nil {
		return nil, Info{}, err
	}
	info = Info{Format: format, Width: w, Height: h, Orientation: 1}
	if w <= 0 || h <= 0 {
		return nil, info, fmt.Errorf("%w: %s declares a %dx%d image", ErrCorrupt, format, w, h)
	}
	if limit := opt.maxPixels(); limit > 0 && int64(w)*int64(h) > limit {
		return nil, info, fmt.Errorf("%w: %dx%d is %d pixels, over the pixel limit of %d",
			ErrPixelLimit, w, h, int64(w)*int64(h), limit)
	}
	// The standard decoders are not expected to panic, but an image from the
	// network must never take the process down.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: %s decoder failed: %v", ErrCorrupt, format, r)
		}
	}()
	img, info.Mode, err = decodePixels(ctx, b, format, opt)
	if cerr := ctx.Err(); cerr != nil {
		return nil, info, fmt.Errorf("%s decode stopped: %w", format, cerr)
	}
	if errors.Is(err, ErrTooManyScans) {
		return nil, info, fmt.Errorf("%s: %w", format, err)
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s: %v", ErrCorrupt, format, err)
	}
	if img.W != w || img.H != h {
		return nil, info, fmt.Errorf("%w: %s decoded to %dx%d, header says %dx%d", ErrCorrupt, format, img.W, img.H, w, h)
	}
	info.Orientation = readOrientation(b, format)
	if !opt.IgnoreOrientation {
		img = Orient(img, info.Orientation)
	}
	return img, info, nil
}

func decodePixels(ctx context.Context, b []byte, format string, opt DecodeOptions) (*RGB, string, error) {
	switch format {
	case FormatJPEG:
		hdr, err := readJPEGHeader(b)
		if err != nil {
			return nil, "", err
		}
		pix, comps, err := decodeJPEG(ctx, b, hdr, opt.maxScans())
		if err != nil {
			return nil, "", err
		}
		if comps == 4 {
			return cmykToRGBInPlace(pix, hdr.w, hdr.h, true), "CMYK", nil
		}
		mode := "RGB"
		if hdr.comps == 1 {
			mode = "L"
		}
		return &RGB{W: hdr.w, H: hdr.h, Pix: pix}, mode, nil
	case FormatGIF:
		return decodeGIF(ctx, b)
	case FormatWebP:
		return decodeWebP(newCtxReader(ctx, b), b)
	}
	var m image.Image
	var err error
	r := newCtxReader(ctx, b)
	switch format {
	case FormatPNG:
		m, err = png.Decode(r)
	case FormatBMP:
		m, err = bmp.Decode(r)
	default:
		return nil, "", ErrUnsupported
	}
	if err != nil {
		return nil, "", err
	}
	img, mode := toRGB(m)
	return img, mode, nil
}

// DecodeCost estimates, from the header alone, the most memory in bytes that
// decoding b takes (the decoder's buffers and the RGB result), so that a
// server can admit work by its cost before decoding. It fails as
// DecodeConfig does. cost.go counts each format's buffers; TestDecodeCost
// measures real decodes against it.
func DecodeCost(b []byte) (int64, error) {
	return decodeCost(b)
}
