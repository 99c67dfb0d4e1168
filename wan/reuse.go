package wan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Reusable streams: a call goes on an idle stream of its connection when
// there is one, and its stream stays open for later calls.
//
// A stream per request costs more than its frames: quic-go gives the
// stream's credit back to the peer in a MAX_STREAMS frame as soon as the
// stream is done, in a packet of its own when nothing else is going out,
// and that packet draws an ACK. One call at a time took 4 datagrams where
// a request and its reply need 2 (BenchmarkCallSequential).
//
// A caller opens a reusable stream with a TypeStream envelope, written
// together with the stream's first request. The peer then serves one
// request after another on it, each as it serves the request of a stream
// of its own (the principal's rate, the request's deadline, the handler),
// and ends each request's replies with TypeDone, or with a TypeError (a
// handler's last reply, sent with SendLast, goes out in one stream write
// with its TypeDone). The
// caller sends the next request only once the last one has ended, and
// closes the stream (FIN) when it no longer wants it. A peer that has
// waited IdleTimeout for a stream's next request sends TypeStreamIdle
// and stops reading it: a request the caller wrote meanwhile was not read,
// and goes again on another stream. A peer of an earlier release hands
// the TypeStream envelope to its handler, which refuses it; it ran nothing
// else on that stream, so the request goes again on a stream of its own,
// and so do the calls to that address for reuseRetry.

const (
	// TypeStream opens a reusable stream; its payload is CBOR null and it
	// has no reply.
	TypeStream MsgType = 4
	// TypeDone ends the replies of one request on a reusable stream; its
	// id is the request's and its payload CBOR null.
	TypeDone MsgType = 5
	// TypeStreamIdle ends a reusable stream that waited too long for its
	// next request: what the caller wrote after it was not read.
	TypeStreamIdle MsgType = 6
	// firstCallerType is the first message type callers define.
	firstCallerType MsgType = 16

	// maxIdleStreams bounds the idle streams kept per address.
	maxIdleStreams = 64
	// reuseWindow: a stream idle for longer is closed rather than reused
	// (the peer waits IdleTimeout, 30s by default, for the next request).
	reuseWindow = 10 * time.Second
	// reuseRetry is how long an address that refused a reusable stream
	// gets streams of their own.
	reuseRetry = time.Minute
	// maxReuseAttempts bounds the times one call goes again on another
	// stream because the peer had closed the idle one it was written to.
	maxReuseAttempts = 3
)

// nullPayload is the payload of the control envelopes: CBOR null.
var nullPayload = []byte{0xf6}

// idleStream is a reusable stream waiting for its next call.
type idleStream struct {
	conn  *quic.Conn
	str   *quic.Stream
	since time.Time
}

// reuseState holds a pool's idle streams, per address, and the addresses
// that refused reusable streams.
type reuseState struct {
	mu      sync.Mutex
	idle    map[string][]idleStream
	refusal map[string]time.Time // address -> until when it gets streams of their own
}

func (s *reuseState) refused(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.refusal[addr]
	if ok && time.Now().After(until) {
		delete(s.refusal, addr)
		return false
	}
	return ok
}

func (s *reuseState) refuse(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusal == nil {
		s.refusal = make(map[string]time.Time)
	}
	s.refusal[addr] = time.Now().Add(reuseRetry)
}

// take returns the most recently used idle stream of conn to addr, or nil.
// Streams of another connection, or idle too long, are closed.
func (s *reuseState) take(addr string, conn *quic.Conn) *quic.Stream {
	var stale []*quic.Stream
	defer func() {
		for _, str := range stale {
			closeIdle(str)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.idle[addr]
	for len(l) > 0 {
		last := l[len(l)-1]
		l = l[:len(l)-1]
		if last.conn == conn && time.Since(last.since) < reuseWindow && last.str.Context().Err() == nil {
			s.idle[addr] = l
			return last.str
		}
		stale = append(stale, last.str)
	}
	delete(s.idle, addr)
	return nil
}

// put keeps str, a stream of conn to addr whose last request has ended,
// for the next call; past maxIdleStreams it is closed.
func (s *reuseState) put(addr string, conn *quic.Conn, str *quic.Stream) {
	s.mu.Lock()
	if s.idle == nil {
		s.idle = make(map[string][]idleStream)
	}
	l := s.idle[addr]
	if len(l) >= maxIdleStreams {
		s.mu.Unlock()
		closeIdle(str)
		return
	}
	s.idle[addr] = append(l, idleStream{conn: conn, str: str, since: time.Now()})
	s.mu.Unlock()
}

// closeIdle ends a reusable stream between requests: FIN, and nothing
// more wanted from the peer.
func closeIdle(str *quic.Stream) {
	str.Close()
	str.CancelRead(streamDone)
}

// resetStream abandons a stream whose request has not ended cleanly.
func resetStream(str *quic.Stream) {
	str.CancelWrite(streamCancelled)
	str.CancelRead(streamCancelled)
}

// callReusing sends frame, the request reqID, on an idle stream of conn or
// a new reusable one, and reads its replies to their end. again reports
// that the request was not read (the peer had closed the idle stream, or
// the stream was reset before the request was written whole) and is to go
// again; it is only reported while mayRetry.
func (p *pool) callReusing(ctx context.Context, addr string, conn *quic.Conn, id Identity, reqID uint64, frame []byte, onReply func(*Envelope) error, mayRetry bool) (again bool, err error) {
	str := p.reuse.take(addr, conn)
	opening := str == nil
	out := frame
	var openID uint64
	if opening {
		str, err = conn.OpenStreamSync(ctx)
		if err != nil {
			return false, p.callError(ctx, addr, err)
		}
		openID = p.nextID.Add(1)
		out, err = appendFrame(nil, &Envelope{V: Version, Type: TypeStream, ID: openID, Payload: nullPayload}, p.maxFrame)
		if err != nil {
			resetStream(str)
			return false, err
		}
		out = append(out, frame...)
	}
	stop := context.AfterFunc(ctx, func() { resetStream(str) })
	keep := false
	defer func() {
		if stop() && keep {
			p.reuse.put(addr, conn, str)
		} else {
			resetStream(str)
		}
	}()

	// As on a stream of its own, the request counts as sent once the
	// stream has taken its whole frame.
	if n, werr := str.Write(out); n < len(out) {
		if werr == nil {
			werr = io.ErrShortWrite
		}
		if !opening && mayRetry && ctx.Err() == nil && conn.Context().Err() == nil {
			return true, nil // the peer reset the idle stream: try another
		}
		return false, p.callError(ctx, addr, werr)
	}
	if p.onSent != nil {
		p.onSent(id, len(out))
	}
	for replies := 0; ; replies++ {
		r, err := ReadMessage(str, p.maxFrame, p.maxMessage)
		if err == io.EOF {
			if ctx.Err() != nil {
				return false, fmt.Errorf("%w: call %s: %w", ErrOutcomeUnknown, addr, ctx.Err())
			}
			return false, fmt.Errorf("%w: %s ended a reusable stream before answering the request on it", ErrOutcomeUnknown, addr)
		}
		if err != nil {
			return false, p.replyError(ctx, addr, err)
		}
		p.heardFrom(addr, conn)
		switch {
		case replies == 0 && r.Type == TypeStreamIdle && !opening:
			// The peer gave up on the idle stream before it read this.
			if mayRetry {
				return true, nil
			}
			return false, fmt.Errorf("%w: %s closed %d idle streams in a row", ErrUnreachable, addr, maxReuseAttempts)
		case replies == 0 && opening && r.ID == openID && r.Type == TypeError:
			// An earlier release, which does not know TypeStream: it ran
			// nothing but the refusal. The request goes alone.
			var ep ErrorPayload
			r.Decode(&ep)
			p.log.Debug("wan: peer refused a reusable stream; giving its calls streams of their own", "addr", addr, "for", reuseRetry, "code", ep.Code, "message", ep.Message)
			p.reuse.refuse(addr)
			return false, p.callOnNewStream(ctx, addr, conn, id, frame, onReply)
		case r.Type == TypeError && (r.ID == reqID || r.ID == 0):
			var ep ErrorPayload
			if err := r.Decode(&ep); err != nil {
				return false, fmt.Errorf("wan: error reply from %s: %w", addr, err)
			}
			keep = r.ID == reqID // an error of the request, not of the stream
			return false, &RemoteError{Code: ep.Code, Message: ep.Message}
		case r.ID != reqID:
			return false, fmt.Errorf("%w: %s sent a reply of type %d for request %d on the stream of request %d", ErrOutcomeUnknown, addr, r.Type, r.ID, reqID)
		case r.Type == TypeDone:
			keep = true
			return false, nil
		}
		if err := onReply(r); err != nil {
			return false, err
		}
	}
}

// serveReusable serves the requests of a reusable stream, one after
// another, until the caller closes it, it stays idle for IdleTimeout, or
// something goes wrong; r writes to the stream.
func (t *Transport) serveReusable(from Identity, str *quic.Stream, r *replier, bud *budget) {
	t.reusableServed.Add(1)
	r.reqID = 0 // errors of the stream itself carry id 0
	for {
		rr := newRequestReader(str, bud, t.cfg.IdleTimeout)
		req, err := ReadMessage(rr, t.cfg.MaxFrame, t.cfg.MaxMessage)
		read := rr.read
		rr.done()
		if err != nil {
			switch {
			case err == io.EOF:
				// The caller closed the stream between requests.
			case read == 0 && errors.Is(err, os.ErrDeadlineExceeded):
				t.closeIdle(str, r)
			default:
				t.unreadable(from, str, r, err)
			}
			return
		}
		if t.forceIdle.Load() && t.forceIdle.CompareAndSwap(true, false) {
			t.closeIdle(str, r) // as if it had come a moment too late
			return
		}
		if req.Type < firstCallerType {
			r.Send(errorWithID(req.ID, CodeBadRequest, fmt.Sprintf("message type %d cannot be sent on a reusable stream", req.Type)))
			str.CancelRead(streamProtocol)
			return
		}
		qr := &requestReplier{r: r, id: req.ID}
		t.serveRequest(str.Context(), from, req, qr, func(d time.Time) { str.SetWriteDeadline(d) })
		// The end of the replies goes out even if the request's deadline
		// passed as its last reply was written, but does not wait for a
		// caller that stopped reading for longer than IdleTimeout.
		str.SetWriteDeadline(time.Now().Add(t.cfg.IdleTimeout))
		qr.finish()
		str.SetWriteDeadline(time.Time{})
		if str.Context().Err() != nil {
			return
		}
	}
}

// closeIdle ends a reusable stream that waited too long for its next
// request: TypeStreamIdle tells the caller that nothing more was read.
func (t *Transport) closeIdle(str *quic.Stream, r *replier) {
	t.idleStreamsClosed.Add(1)
	r.Send(&Envelope{V: Version, Type: TypeStreamIdle, Payload: nullPayload})
	str.CancelRead(streamDone)
}

// errorWithID is a TypeError reply to request id.
func errorWithID(id uint64, code, msg string) *Envelope {
	e := errorEnvelope(code, msg)
	e.ID = id
	return e
}

// requestReplier sends the replies of one request of a reusable stream,
// each with the request's id, and ends them with TypeDone unless a
// TypeError did.
type requestReplier struct {
	r    *replier
	id   uint64
	sent atomic.Int64

	mu    sync.Mutex
	ended bool // a TypeError or TypeDone went: later replies are refused
}

func (q *requestReplier) Send(e *Envelope) error { return q.send(e, false) }

func (q *requestReplier) sendLast(e *Envelope) error { return q.send(e, true) }

// send writes e with the request's id. If last, the TypeDone that ends the
// request's replies goes in the same stream write, and the request takes
// no more; a write that fails may then have left part of the two on the
// stream, so the stream's write side is cancelled: the caller sees a
// reset rather than a torn frame, and nothing more is served on it.
func (q *requestReplier) send(e *Envelope, last bool) error {
	if e == nil {
		return errors.New("wan: Send of nil envelope")
	}
	if e.Type < firstCallerType && e.Type != TypeError {
		return fmt.Errorf("wan: a handler may not reply with message type %d", e.Type)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return fmt.Errorf("%w: reply after the request's answer ended", ErrClosed)
	}
	c := *e
	c.ID = q.id
	if !last {
		if err := q.r.Send(&c); err != nil {
			return err
		}
		q.sent.Add(1)
		q.ended = c.Type == TypeError
		return nil
	}
	frames, err := appendMessage(nil, &c, q.r.maxFrame, q.r.maxMessage)
	if err != nil {
		return err // nothing written: the handler may still answer
	}
	n := int64(1)
	if c.Type != TypeError {
		frames, _ = appendFramed(frames, &Envelope{V: Version, Type: TypeDone, ID: q.id, Payload: nullPayload})
		n++
	}
	q.ended = true
	if err := q.r.write(frames, n); err != nil {
		q.r.str.CancelWrite(streamProtocol)
		return err
	}
	q.sent.Add(1)
	return nil
}

func (q *requestReplier) SendError(code, msg string) error {
	return q.Send(errorEnvelope(code, msg))
}

func (q *requestReplier) sentCount() int64 { return q.sent.Load() }

// finish ends the request's replies with TypeDone, unless a TypeError
// ended them; a handler goroutine that replies later gets ErrClosed.
func (q *requestReplier) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return
	}
	q.ended = true
	q.r.Send(&Envelope{V: Version, Type: TypeDone, ID: q.id, Payload: nullPayload})
}
