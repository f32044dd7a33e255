// Package report renders the artefacts a training run logs besides its
// metrics: the loss and accuracy curves and the confusion matrix as PNG
// images, and a per-class classification report (text and JSON-friendly
// rows), in the spirit of matplotlib + scikit-learn's classification_report.
//
// Rendering uses gonum.org/v1/plot with its embedded Liberation fonts, so it
// works offline and needs no system fonts. Output is deterministic: the same
// inputs give the same PNG bytes.
package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"

	xfont "golang.org/x/image/font"

	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// maxSide bounds the pixel size of any image this package renders.
const maxSide = 10000

// sans and sansBold are the Liberation faces embedded in gonum/plot.
var (
	sans        = font.Font{Typeface: "Liberation", Variant: "Sans"}
	sansBold    = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
	textHandler = text.Plain{Fonts: font.DefaultCache}
)

// textStyle returns a plain-text style in Liberation Sans.
func textStyle(f font.Font, size vg.Length, c color.Color) text.Style {
	return text.Style{
		Color:   c,
		Font:    font.From(f, size),
		XAlign:  draw.XLeft,
		YAlign:  draw.YBottom,
		Handler: textHandler,
	}
}

// newCanvas returns a white w×h pixel canvas at the given DPI.
func newCanvas(w, h, dpi int) *vgimg.Canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	return vgimg.NewWith(vgimg.UseImage(img), vgimg.UseDPI(dpi))
}

// encodePNG encodes img with the standard encoder (deterministic).
func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("report: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// safely runs f, turning a panic from the plotting library into an error.
func safely(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("report: %s: %v", what, r)
		}
	}()
	return f()
}

// hexColor parses "#rrggbb" at init time; it is only used on constants.
func hexColor(s string) color.RGBA {
	var r, g, b uint8
	if _, err := fmt.Sscanf(s, "#%02x%02x%02x", &r, &g, &b); err != nil {
		panic("report: bad colour constant " + s)
	}
	return color.RGBA{R: r, G: g, B: b, A: 255}
}
