package node

import (
	"slices"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/version"
)

// The batches of replica writes, reads and digests carry every replica
// request under load, so they encode and decode themselves without
// reflection (codec.Appender, codec.Parser): AppendCBOR writes the bytes
// the reflecting encoder writes, and ParseCBOR reads that shape, at this
// node's message version, and hands anything else to the message's
// UnmarshalCBOR through the reflecting decoder, which decodes or refuses it
// as before (TestBatchCodecsMatchReflection, FuzzBatchDecoding).

// viaReflection hands a message to the reflecting decoder, which checks
// the data and calls the message's UnmarshalCBOR (decodeVersioned).
type viaReflection struct {
	m interface{ UnmarshalCBOR([]byte) error }
}

func (v *viaReflection) UnmarshalCBOR(b []byte) error { return v.m.UnmarshalCBOR(b) }

// reflecting decodes data into m as codec.Unmarshal did before m had a
// ParseCBOR.
func reflecting(data []byte, m interface{ UnmarshalCBOR([]byte) error }) error {
	return codec.Unmarshal(data, &viaReflection{m})
}

// AppendCBOR appends m's encoding to dst.
func (m *replicaBatch) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	size := 16
	for i := range m.Writes {
		w := &m.Writes[i]
		size += 32 + len(w.Keyspace) + len(w.Key) + len(w.Traceparent) + version.EncodedSize(w.Object)
	}
	for i := range m.Reads {
		size += 32 + len(m.Reads[i].Keyspace) + len(m.Reads[i].Key) + len(m.Reads[i].Traceparent)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, 0x80|3)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	if m.Writes == nil {
		dst = append(dst, codec.Null)
	} else {
		dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(m.Writes)))
		for i := range m.Writes {
			w := &m.Writes[i]
			dst = append(dst, 0x80|4)
			dst = codec.AppendText(dst, w.Keyspace)
			dst = codec.AppendBytes(dst, w.Key)
			dst = version.AppendObject(dst, w.Object)
			dst = codec.AppendText(dst, w.Traceparent)
		}
	}
	return appendReads(dst, m.Reads)
}

// ParseCBOR decodes data, all of it, into m.
func (m *replicaBatch) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(3)
	out := replicaBatch{V: r.Uint8()}
	if n, ok := r.Container(codec.MajorArray, 4, codec.MaxArrayElements); ok {
		out.Writes = make([]batchWrite, n)
		for i := range out.Writes {
			r.Array(4)
			out.Writes[i] = batchWrite{Keyspace: r.Name(), Key: r.Bytes(), Object: version.ReadObject(&r), Traceparent: r.Text()}
		}
	}
	out.Reads = readReads(&r)
	if !r.Done() || out.V != msgVersion {
		return reflecting(data, m)
	}
	*m = out
	return nil
}

// AppendCBOR appends m's encoding to dst.
func (m *replicaBatchReply) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	size := 16 + len(m.Node)
	for _, e := range m.Writes {
		size += 9 + len(e)
	}
	for i := range m.Reads {
		size += 16 + len(m.Reads[i].Error) + version.EncodedSize(m.Reads[i].Object)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, 0x80|4)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	dst = codec.AppendText(dst, m.Node)
	if m.Writes == nil {
		dst = append(dst, codec.Null)
	} else {
		dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(m.Writes)))
		for _, e := range m.Writes {
			dst = codec.AppendText(dst, e)
		}
	}
	if m.Reads == nil {
		return append(dst, codec.Null)
	}
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(m.Reads)))
	for i := range m.Reads {
		o := &m.Reads[i]
		dst = append(dst, 0x80|3)
		dst = version.AppendObject(dst, o.Object)
		dst = codec.AppendText(dst, o.Error)
		dst = codec.AppendBool(dst, o.Again)
	}
	return dst
}

// ParseCBOR decodes data, all of it, into m.
func (m *replicaBatchReply) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(4)
	out := replicaBatchReply{V: r.Uint8(), Node: r.Name()}
	if n, ok := r.Container(codec.MajorArray, 1, codec.MaxArrayElements); ok {
		out.Writes = make([]string, n)
		for i := range out.Writes {
			out.Writes[i] = r.Text()
		}
	}
	if n, ok := r.Container(codec.MajorArray, 4, codec.MaxArrayElements); ok {
		out.Reads = make([]batchObject, n)
		for i := range out.Reads {
			r.Array(3)
			out.Reads[i] = batchObject{Object: version.ReadObject(&r), Error: r.Text(), Again: r.Bool()}
		}
	}
	if !r.Done() || out.V != msgVersion {
		return reflecting(data, m)
	}
	*m = out
	return nil
}

// AppendCBOR appends m's encoding to dst.
func (m *digestBatch) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	size := 16
	for i := range m.Reads {
		size += 32 + len(m.Reads[i].Keyspace) + len(m.Reads[i].Key) + len(m.Reads[i].Traceparent)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, 0x80|2)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	return appendReads(dst, m.Reads)
}

// ParseCBOR decodes data, all of it, into m.
func (m *digestBatch) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(2)
	out := digestBatch{V: r.Uint8(), Reads: readReads(&r)}
	if !r.Done() || out.V != msgVersion {
		return reflecting(data, m)
	}
	*m = out
	return nil
}

// AppendCBOR appends m's encoding to dst.
func (m *digestBatchReply) AppendCBOR(dst []byte) []byte {
	if m == nil {
		return append(dst, codec.Null)
	}
	size := 16 + len(m.Node)
	for i := range m.Digests {
		size += 16 + len(m.Digests[i].Digest) + len(m.Digests[i].Error)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, 0x80|3)
	dst = codec.AppendHead(dst, codec.MajorUint, uint64(m.V))
	dst = codec.AppendText(dst, m.Node)
	if m.Digests == nil {
		return append(dst, codec.Null)
	}
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(m.Digests)))
	for i := range m.Digests {
		dst = append(dst, 0x80|2)
		dst = codec.AppendBytes(dst, m.Digests[i].Digest)
		dst = codec.AppendText(dst, m.Digests[i].Error)
	}
	return dst
}

// ParseCBOR decodes data, all of it, into m.
func (m *digestBatchReply) ParseCBOR(data []byte) error {
	r := codec.NewReader(data)
	r.Array(3)
	out := digestBatchReply{V: r.Uint8(), Node: r.Name()}
	if n, ok := r.Container(codec.MajorArray, 3, codec.MaxArrayElements); ok {
		out.Digests = make([]batchDigest, n)
		for i := range out.Digests {
			r.Array(2)
			out.Digests[i] = batchDigest{Digest: r.Bytes(), Error: r.Text()}
		}
	}
	if !r.Done() || out.V != msgVersion {
		return reflecting(data, m)
	}
	*m = out
	return nil
}

// appendReads appends a batch's reads (nil as null).
func appendReads(dst []byte, reads []batchRead) []byte {
	if reads == nil {
		return append(dst, codec.Null)
	}
	dst = codec.AppendHead(dst, codec.MajorArray, uint64(len(reads)))
	for i := range reads {
		dst = append(dst, 0x80|3)
		dst = codec.AppendText(dst, reads[i].Keyspace)
		dst = codec.AppendBytes(dst, reads[i].Key)
		dst = codec.AppendText(dst, reads[i].Traceparent)
	}
	return dst
}

// readReads reads a batch's reads (null as nil).
func readReads(r *codec.Reader) []batchRead {
	n, ok := r.Container(codec.MajorArray, 4, codec.MaxArrayElements)
	if !ok {
		return nil
	}
	reads := make([]batchRead, n)
	for i := range reads {
		r.Array(3)
		reads[i] = batchRead{Keyspace: r.Name(), Key: r.Bytes(), Traceparent: r.Text()}
	}
	return reads
}
