package v2

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"petbreed/internal/serve/protocol"
)

// The pet check as a second output tensor (issue 13): pet_score, FP32 [N],
// each image's probability of looking like a cat or a dog, returned by
// default beside the probabilities when the model has one, or when asked
// for by name. Its threshold is in the model's metadata; the adapter passes
// the score on as the model computed it.

// petMeta describes the pet output in the model's metadata.
func petMeta() TensorMeta { return TensorMeta{protocol.PetOutput, "FP32", []int64{-1}} }

// appendPetOutput appends the pet output of probs' rows: its JSON header,
// with the data, or the data to bin when binary.
func appendPetOutput(hdr, bin []byte, p protocol.Predictor, probs [][]float32, asBinary bool) ([]byte, []byte) {
	hdr = append(hdr, `{"name":`...)
	hdr = appendJSONString(hdr, protocol.PetOutput)
	hdr = fmt.Appendf(hdr, `,"datatype":"FP32","shape":[%d]`, len(probs))
	score := func(row []float32) float32 {
		if c := protocol.PetOf(p, row); c != nil && !math.IsNaN(float64(c.Score)) {
			return c.Score
		}
		return 0
	}
	if asBinary {
		start := len(bin)
		for _, row := range probs {
			bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(score(row)))
		}
		return fmt.Appendf(hdr, `,"parameters":{"binary_data_size":%d}}`, len(bin)-start), bin
	}
	hdr = append(hdr, `,"data":[`...)
	for i, row := range probs {
		if i > 0 {
			hdr = append(hdr, ',')
		}
		hdr = strconv.AppendFloat(hdr, float64(score(row)), 'g', -1, 32)
	}
	return append(hdr, "]}"...), bin
}
