package api

// MsgType values of the drill fence (see docs/drill.md).
const (
	TypeFence      = 74 // FenceRequest -> FenceResponse
	TypeFenceReply = 75
)

// MaxFenceMillis bounds how long one fence request may cut a region off: a
// drill that dies leaves no region fenced for longer.
const MaxFenceMillis = 24 * 3600 * 1000

// FenceRequest tells the one node it is sent to to drop all node-to-node
// traffic (requests, replies and gossip) to and from the nodes of Region,
// for Millis milliseconds or until lifted; a node of Region itself drops
// its traffic with every other region and refuses client reads and writes,
// so that clients fail over. An empty Region (or Millis 0) lifts the
// fence. It needs the admin permission. A failover drill sends it to every
// node.
type FenceRequest struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Region string
	Millis int64
}

// FenceResponse is the node's fence after the request.
type FenceResponse struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Node   string `json:"node"`
	DC     string `json:"dc"`
	Region string `json:"region"` // "" when no fence is up
	// Until is when the fence lifts by itself (Unix milliseconds; 0: none).
	Until int64 `json:"until_ms"`
	// Peers are the nodes this node now exchanges nothing with.
	Peers []string `json:"peers"`
}

// Validate checks the request's bounds.
func (r *FenceRequest) Validate() *ClientError {
	if r.Millis < 0 || r.Millis > MaxFenceMillis {
		return Errorf(CodeBadRequest, "meridian: a fence lasts between 0 and %d ms, not %d", MaxFenceMillis, r.Millis)
	}
	if r.Region != "" && r.Millis == 0 {
		return Errorf(CodeBadRequest, "meridian: a fence of region %q needs a duration (it lifts by itself after it)", r.Region)
	}
	return nil
}
