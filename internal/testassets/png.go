package testassets

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// BombPNG is a PNG signature and an IHDR declaring a w x h 8-bit RGB image,
// followed by junk: a decompression bomb as far as the header is concerned,
// for testing that the pixel limit is applied before any decoding.
func BombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	PNGChunk(&b, "IHDR", ihdr)
	PNGChunk(&b, "IDAT", []byte("junk"))
	return b.Bytes()
}

// PNGChunk appends one PNG chunk (length, type, data, CRC) to b.
func PNGChunk(b *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	b.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	b.Write(n[:])
}
