package train

import "math/rand/v2"

// Random streams. Every random decision is drawn from a PCG (math/rand/v2)
// whose state is derived from Config.Seed and a fixed stream label, so the
// initialisation, the epoch shuffles and the dropout masks are independent
// of one another and of the number of goroutines.
const (
	streamInit    = 0x696e6974 // "init"
	streamShuffle = 0x73687566 // "shuf"
	streamDropout = 0x64726f70 // "drop"
)

// mix is SplitMix64's finaliser, a bijection that scatters nearby inputs.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// newStream returns a PCG for the given seed and stream label.
func newStream(seed, stream uint64) *rand.PCG {
	return rand.NewPCG(mix(seed^mix(stream)), mix(stream+mix(seed)))
}

// seedSample seeds p for the dropout mask of one sample: the key is the
// dropout stream of the run and idx counts every sample presented since the
// start of training, so a mask depends only on (seed, position in training),
// never on which goroutine draws it.
func seedSample(p *rand.PCG, key, idx uint64) {
	p.Seed(mix(key^mix(idx)), mix(idx+key))
}
