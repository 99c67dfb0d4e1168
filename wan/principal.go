package wan

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"
)

// Limits per principal (a certificate's role and name), defaults.
const (
	// DefaultMaxConnsPerPrincipal bounds the connections one client
	// principal holds to a node at once. A Go client holds one per node.
	DefaultMaxConnsPerPrincipal = 64
	// DefaultMaxRequestBytesPerClient bounds the bytes of the requests
	// being read from one client principal: 64 requests of the largest
	// default value at once.
	DefaultMaxRequestBytesPerClient = 64 << 20
	// DefaultMaxConnsPerNode bounds the connections one node holds to
	// another: a pool keeps one, a restart may leave the old ones open
	// until their idle timeout.
	DefaultMaxConnsPerNode = 256
	// DefaultClientRequestsPerSecond and DefaultClientRequestBurst bound
	// the requests one client principal may make of one node: far above
	// what one node serves, so they stop a runaway or hostile client from
	// taking every handler goroutine, never an honest workload.
	DefaultClientRequestsPerSecond = 10000
	DefaultClientRequestBurst      = 20000
	// DefaultUnvalidatedHandshakeRate is the rate of new connections a
	// transport accepts before it makes every new one prove its source
	// address first (a QUIC Retry, RFC 9000 §8.1.2).
	DefaultUnvalidatedHandshakeRate = 100
)

// codeTooManyConns closes a connection past its principal's limit.
const codeTooManyConns quic.ApplicationErrorCode = 0x103

// refusalLogEvery is how often refusals of one principal are logged: the
// first of a burst at once, the rest counted and summed up in the next
// line at most this often.
const refusalLogEvery = 10 * time.Second

// principals counts, per principal, the connections it holds to this
// transport and the requests it may still make. Entries live while the
// principal holds a connection, and after, until its request bucket has
// refilled (checked when it closes a connection, and over every entry
// once there are many): reconnecting does not refill it.
type principals struct {
	maxClientConns int
	maxNodeConns   int
	reqRate        rate.Limit // per client principal; rate.Inf: no limit
	reqBurst       int
	clientBytes    int64 // request bytes in flight per client principal
	log            *slog.Logger

	mu sync.Mutex
	m  map[Identity]*principal
}

type principal struct {
	conns      int
	lim        *rate.Limiter // nil for nodes
	bytes      *budget       // request bytes being read; nil for nodes
	refused    refusalLog    // connections refused
	limited    refusalLog    // requests refused by the rate
	overBudget refusalLog    // requests refused by a byte budget
}

// refusalLog logs the first refusal of a burst and counts the rest.
type refusalLog struct {
	last       time.Time
	suppressed int
}

// note reports whether to log a refusal now, and how many went unlogged
// since the last line.
func (r *refusalLog) note(now time.Time) (bool, int) {
	if !r.last.IsZero() && now.Sub(r.last) < refusalLogEvery {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return true, n
}

func newPrincipals(cfg *Config) *principals {
	p := &principals{
		maxClientConns: cfg.MaxConnsPerPrincipal,
		maxNodeConns:   cfg.MaxConnsPerNode,
		reqRate:        rate.Limit(cfg.ClientRequestsPerSecond),
		reqBurst:       cfg.ClientRequestBurst,
		clientBytes:    cfg.MaxRequestBytesPerClient,
		log:            cfg.Logger,
		m:              make(map[Identity]*principal),
	}
	if cfg.ClientRequestsPerSecond < 0 {
		p.reqRate = rate.Inf
	}
	return p
}

// connLimit is the most connections id may hold.
func (p *principals) connLimit(id Identity) (int, string) {
	if id.Role == RoleNode {
		return p.maxNodeConns, "the per-node connection limit"
	}
	return p.maxClientConns, "the per-principal connection limit"
}

// principalKey is id without its serial: every certificate of one role and
// name is one principal.
func principalKey(id Identity) Identity { return Identity{Role: id.Role, Name: id.Name} }

// sweepAbove is the number of entries past which get drops those that
// hold no connection and whose bucket has refilled.
const sweepAbove = 1024

func (p *principals) get(id Identity) *principal {
	pr := p.m[id]
	if pr == nil {
		if len(p.m) >= sweepAbove {
			for other, e := range p.m {
				p.forgetLocked(other, e)
			}
		}
		pr = &principal{}
		if id.Role != RoleNode && p.reqRate != rate.Inf {
			pr.lim = rate.NewLimiter(p.reqRate, p.reqBurst)
		}
		if id.Role != RoleNode {
			pr.bytes = &budget{limit: p.clientBytes, owner: id.String()}
		}
		p.m[id] = pr
	}
	return pr
}

// admit counts a new connection of id and returns the principal's request
// byte budget (nil for nodes), or refuses it with a message naming the
// limit when id already holds as many as it may. A refusal is logged once
// per burst.
func (p *principals) admit(id Identity, remote net.Addr) (release func(), bytes *budget, refusal string) {
	id = principalKey(id)
	limit, field := p.connLimit(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.get(id)
	if pr.conns >= limit {
		msg := fmt.Sprintf("too many connections: %s already holds %d connections to this node, its limit (%s); close idle connections or share one", id, pr.conns, field)
		if ok, more := pr.refused.note(time.Now()); ok {
			p.log.Warn("wan: refused connection: principal over its connection limit", "principal", id.String(), "remote", remote.String(), "limit", limit, "refused_since_last_log", more)
		}
		p.forgetLocked(id, pr)
		return nil, nil, msg
	}
	pr.conns++
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		pr.conns--
		p.forgetLocked(id, pr)
	}, pr.bytes, ""
}

// noteOverBudget logs, once per burst, a request of id refused because
// its connection's or its principal's request budget was spent.
func (p *principals) noteOverBudget(id Identity, err error) {
	id = principalKey(id)
	p.mu.Lock()
	ok, more := p.get(id).overBudget.note(time.Now())
	p.mu.Unlock()
	if ok {
		p.log.Warn("wan: refused request: over its request budget", "principal", id.String(), "err", err, "refused_since_last_log", more)
	}
}

// forgetLocked drops id's entry once it holds no connection, no request
// bytes, and its request bucket is full again (so forgetting it gives
// nothing back).
func (p *principals) forgetLocked(id Identity, pr *principal) {
	if pr.conns > 0 || (pr.bytes != nil && pr.bytes.used.Load() > 0) {
		return
	}
	if pr.lim != nil && pr.lim.Tokens() < float64(p.reqBurst) {
		return
	}
	delete(p.m, id)
}

// allow takes one request from id's bucket, or says why it may not make
// one now. Nodes are never limited.
func (p *principals) allow(id Identity) (bool, string) {
	if id.Role == RoleNode || p.reqRate == rate.Inf {
		return true, ""
	}
	id = principalKey(id)
	p.mu.Lock()
	pr := p.get(id)
	lim := pr.lim
	p.mu.Unlock()
	if lim.Allow() {
		return true, ""
	}
	p.mu.Lock()
	ok, more := pr.limited.note(time.Now())
	p.mu.Unlock()
	if ok {
		p.log.Warn("wan: refused request: principal over its request rate", "principal", id.String(), "per_second", float64(p.reqRate), "burst", p.reqBurst, "refused_since_last_log", more)
	}
	return false, fmt.Sprintf("request rate limit: %s may make %g requests per second (burst %d) of this node, its per-principal rate limit; the request was not served, retry it later", id, float64(p.reqRate), p.reqBurst)
}

// handshakeGate decides which connection attempts must first prove their
// source address with a QUIC Retry: all of them once more than rate per
// second arrive (burst as many at once), none before. A negative rate
// validates every attempt. The address it is given may be spoofed, so it
// is not keyed by address: the attempts are counted together.
func handshakeGate(perSecond float64) func(net.Addr) bool {
	if perSecond < 0 {
		return func(net.Addr) bool { return true }
	}
	burst := int(math.Max(1, math.Ceil(perSecond)))
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	return func(net.Addr) bool { return !lim.Allow() }
}
