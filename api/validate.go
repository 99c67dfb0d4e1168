package api

import (
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/version"
)

// Validate checks what a node can check of a get before it looks at its
// own state (the keyspace, the ring): the key and the consistency level.
// Each request's Validate does the same for its kind (the value limit is
// the node's own); a node calls it on every decoded request, and a
// refusal is a *ClientError with its Code set.
func (r *GetRequest) Validate() *ClientError {
	if cerr := checkKey(r.Key); cerr != nil {
		return cerr
	}
	return checkConsistency(r.Consistency)
}

// Validate checks a put or delete.
func (r *PutRequest) Validate() *ClientError {
	_, cerr := r.ValidateContext()
	return cerr
}

// ValidateContext is Validate that also returns the decoded causal
// context, so a coordinator decodes it once.
func (r *PutRequest) ValidateContext() (version.Vector, *ClientError) {
	if cerr := checkKey(r.Key); cerr != nil {
		return nil, cerr
	}
	if cerr := checkConsistency(r.Consistency); cerr != nil {
		return nil, cerr
	}
	if r.Delete && len(r.Value) > 0 {
		return nil, Errorf(CodeBadRequest, "meridian: a delete carries no value")
	}
	ctx, err := version.DecodeContext(r.Context)
	if err != nil {
		return nil, Errorf(CodeBadRequest, "meridian: %v", err)
	}
	return ctx, nil
}

// Validate checks a ring request.
func (r *RingRequest) Validate() *ClientError { return checkKey(r.Key) }

// Validate checks an inspect request.
func (r *InspectRequest) Validate() *ClientError { return checkKey(r.Key) }

// Validate checks a repair request.
func (r *RepairRequest) Validate() *ClientError {
	if r.BytesPerSecond < 0 {
		return Errorf(CodeBadRequest, "meridian: repair rate %d bytes per second is negative (0 means no limit)", r.BytesPerSecond)
	}
	for _, dc := range r.Regions {
		if dc == "" {
			return Errorf(CodeBadRequest, "meridian: a repair names an empty region")
		}
	}
	return nil
}

func checkKey(key []byte) *ClientError {
	if err := CheckKey(key); err != nil {
		return err.(*ClientError)
	}
	return nil
}

func checkConsistency(s string) *ClientError {
	if _, err := consistency.Parse(s); err != nil {
		return Errorf(CodeConsistency, "meridian: %v", err)
	}
	return nil
}
