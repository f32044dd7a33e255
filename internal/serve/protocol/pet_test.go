package protocol_test

import (
	"testing"

	"petbreed"
	"petbreed/internal/serve/protocol"
	"petbreed/internal/serve/protocol/protocoltest"
)

func TestPetOf(t *testing.T) {
	p := &protocoltest.Predictor{}
	if protocol.HasPet(p) || protocol.PetOf(p, []float32{1}) != nil {
		t.Error("a model without a pet check has one")
	}
	p.PetCheck = &petbreed.PetCheck{Score: 0.9, Threshold: 0.1, IsPet: true}
	if c := protocol.PetOf(p, []float32{1}); !protocol.HasPet(p) || c == nil || *c != *p.PetCheck {
		t.Errorf("pet check %v", c)
	}
}
