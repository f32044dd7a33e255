package serve

import (
	"petbreed"
	"petbreed/internal/serve/protocol"
)

// The pet check of the model a call holds (protocol.PetChecker): the
// classifier's rows carry it, the batcher passes them on as they are.

func (c *call) HasPet() bool { return c.m.clf.HasPet() }

func (c *call) Pet(row []float32) (petbreed.PetCheck, bool) { return c.m.clf.Pet(row) }

var _ protocol.PetChecker = (*call)(nil)
