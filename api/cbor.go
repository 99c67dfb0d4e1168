package api

import (
	"slices"

	"github.com/meridian-kv/meridian/codec"
)

// The messages of every read and write (GetRequest, GetResponse,
// PutRequest, PutResponse) encode and decode themselves, without
// reflection: codec.Marshal and codec.Unmarshal call AppendCBOR and
// ParseCBOR. AppendCBOR writes the bytes the reflecting encoder writes;
// ParseCBOR reads the shape it writes (definite lengths, the exact number
// of fields, no duplicate map keys, valid UTF-8) and hands anything else
// to the reflecting decoder, which decodes or refuses it as before
// (TestMessageCodecsMatchReflection, FuzzMessageDecoding).

// Method-less copies of the types, for the reflecting codec.
type (
	getRequest  GetRequest
	getResponse GetResponse
	putRequest  PutRequest
	putResponse PutResponse
)

// maxAcked bounds the entries of an Acked map, as the codec bounds maps.
const maxAcked = codec.MaxMapPairs

// AppendCBOR appends m's encoding to dst.
func (m *GetRequest) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	dst = slices.Grow(dst, 1+2+3*9+len(m.Keyspace)+len(m.Key)+len(m.Consistency))
	dst = append(dst, 0x80|4)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	dst = codec.AppendText(dst, m.Keyspace)
	dst = codec.AppendBytes(dst, m.Key)
	return codec.AppendText(dst, m.Consistency)
}

// ParseCBOR decodes data, all of it, into m.
func (m *GetRequest) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(4)
	out := GetRequest{V: r.Uint8(), Keyspace: r.Name(), Key: r.Bytes(), Consistency: r.Name()}
	if !r.Done() {
		return codec.Unmarshal(data, (*getRequest)(m))
	}
	*m = out
	return nil
}

// AppendCBOR appends m's encoding to dst.
func (m *PutRequest) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	dst = slices.Grow(dst, 1+2+7*9+len(m.Keyspace)+len(m.Key)+len(m.Value)+len(m.Context)+len(m.Consistency)+len(m.LocalDC))
	dst = append(dst, 0x80|9)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	dst = codec.AppendText(dst, m.Keyspace)
	dst = codec.AppendBytes(dst, m.Key)
	dst = codec.AppendBytes(dst, m.Value)
	dst = codec.AppendBool(dst, m.Delete)
	dst = codec.AppendText(dst, m.Context)
	dst = codec.AppendText(dst, m.Consistency)
	dst = codec.AppendBool(dst, m.Forwarded)
	return codec.AppendText(dst, m.LocalDC)
}

// ParseCBOR decodes data, all of it, into m.
func (m *PutRequest) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(9)
	out := PutRequest{V: r.Uint8(), Keyspace: r.Name(), Key: r.Bytes(), Value: r.Bytes(), Delete: r.Bool(),
		Context: r.Text(), Consistency: r.Name(), Forwarded: r.Bool(), LocalDC: r.Name()}
	if !r.Done() {
		return codec.Unmarshal(data, (*putRequest)(m))
	}
	*m = out
	return nil
}

// AppendCBOR appends m's encoding to dst.
func (m *GetResponse) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	size := 1 + 2 + 9 + 9 + len(m.Context) + 1 + ackedSize(m.Acked)
	for i := range m.Siblings {
		size += 1 + 9 + len(m.Siblings[i].Value) + 9 + len(m.Siblings[i].Writer)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, 0x80|5)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	if m.Siblings == nil {
		dst = append(dst, codec.Null)
	} else {
		dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(m.Siblings)))
		for i := range m.Siblings {
			dst = append(dst, 0x80|2)
			dst = codec.AppendBytes(dst, m.Siblings[i].Value)
			dst = codec.AppendText(dst, m.Siblings[i].Writer)
		}
	}
	dst = codec.AppendText(dst, m.Context)
	dst = codec.AppendBool(dst, m.Deleted)
	return appendAcked(dst, m.Acked)
}

// ParseCBOR decodes data, all of it, into m.
func (m *GetResponse) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(5)
	out := GetResponse{V: r.Uint8()}
	if n, ok := r.Container(codec.MajorArray, 3, codec.MaxArrayElements); ok { // a sibling takes three bytes at least
		out.Siblings = make([]Sibling, n)
		for i := range out.Siblings {
			r.Array(2)
			out.Siblings[i] = Sibling{Value: r.Bytes(), Writer: r.Text()}
		}
	}
	out.Context = r.Text()
	out.Deleted = r.Bool()
	out.Acked = readAcked(&r)
	if !r.Done() {
		return codec.Unmarshal(data, (*getResponse)(m))
	}
	*m = out
	return nil
}

// AppendCBOR appends m's encoding to dst.
func (m *PutResponse) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	dst = slices.Grow(dst, 1+2+4*9+len(m.Context)+ackedSize(m.Acked)+len(m.Warning)+len(m.Coordinator))
	dst = append(dst, 0x80|6)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	dst = codec.AppendText(dst, m.Context)
	dst = codec.AppendInt(dst, int64(m.Siblings))
	dst = appendAcked(dst, m.Acked)
	dst = codec.AppendText(dst, m.Warning)
	return codec.AppendText(dst, m.Coordinator)
}

// ParseCBOR decodes data, all of it, into m.
func (m *PutResponse) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(6)
	out := PutResponse{V: r.Uint8(), Context: r.Text(), Siblings: r.Int(), Acked: readAcked(&r), Warning: r.Text(), Coordinator: r.Name()}
	if !r.Done() {
		return codec.Unmarshal(data, (*putResponse)(m))
	}
	*m = out
	return nil
}

// ackedSize bounds the length of an Acked map's encoding.
func ackedSize(acked map[string]int) int {
	n := 9
	for dc := range acked {
		n += 9 + len(dc) + 9
	}
	return n
}

// appendAcked appends an Acked map, its keys in the codec's order.
func appendAcked(dst []byte, acked map[string]int) []byte {
	if acked == nil {
		return append(dst, codec.Null)
	}
	dst = codec.AppendHead(dst, codec.MajorMap, uint64(len(acked)))
	var buf [8]string
	for _, dc := range codec.AppendSortedKeys(buf[:0], acked) {
		dst = codec.AppendText(dst, dc)
		dst = codec.AppendInt(dst, int64(acked[dc]))
	}
	return dst
}

// readAcked reads an Acked map; a key twice turns r not OK.
func readAcked(r *codec.Reader) map[string]int {
	n, ok := r.Container(codec.MajorMap, 2, maxAcked) // a key and a value take a byte each at least
	if !ok {
		return nil
	}
	acked := make(map[string]int, n)
	for range n {
		dc := r.Name()
		v := r.Int()
		if _, dup := acked[dc]; dup {
			r.Fail()
			return nil
		}
		acked[dc] = v
	}
	return acked
}
