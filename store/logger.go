package store

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger routes Pebble's messages to slog. Info goes to the
// configured logger, or nowhere; errors go to the configured logger, or to
// slog.Default() (looked up at each message, so a default installed after
// Open is honoured).
type pebbleLogger struct {
	l *slog.Logger
}

var _ pebble.Logger = (*pebbleLogger)(nil)

func (p *pebbleLogger) errLogger() *slog.Logger {
	if p.l != nil {
		return p.l
	}
	return slog.Default()
}

func pebbleMessage(format string, args []any) string {
	return strings.TrimSpace(fmt.Sprintf(format, args...))
}

// Infof implements pebble.Logger. Pebble's informational chatter (WAL
// recovery, compactions) goes to debug level so node logs stay readable.
func (p *pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(pebbleMessage(format, args), "component", "pebble")
	}
}

// Errorf implements pebble.Logger.
func (p *pebbleLogger) Errorf(format string, args ...any) {
	p.errLogger().Error(pebbleMessage(format, args), "component", "pebble")
}

// Fatalf implements pebble.Logger. Pebble calls it when it can no longer
// guarantee correctness (a failed WAL fsync among others) and expects it not
// to return: continuing would let Pebble report success for a write that
// is not durable. It logs, then panics with a *fatalError, which a Store
// call converts into ErrFailed (see catchFatal); on Pebble's background
// goroutines the panic ends the process, as Pebble's default logger does.
func (p *pebbleLogger) Fatalf(format string, args ...any) {
	msg := pebbleMessage(format, args)
	p.errLogger().Error(msg, "component", "pebble", "fatal", true)
	panic(&fatalError{msg: msg})
}

// eventListener logs the Pebble events an operator should see; the rest
// keep Pebble's defaults (background errors logged, data corruption fatal).
func (p *pebbleLogger) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		DiskSlow: func(info pebble.DiskSlowInfo) {
			p.errLogger().Warn("disk slow", "component", "pebble", "info", info.String())
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			p.errLogger().Warn("write stall begins", "component", "pebble", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			p.errLogger().Warn("write stall ends", "component", "pebble")
		},
	}
}

// fatalError is the panic value of pebbleLogger.Fatalf.
type fatalError struct{ msg string }

func (f *fatalError) Error() string { return f.msg }

// catchFatal, deferred by a function that calls into Pebble, turns a
// pebbleLogger.Fatalf panic on this goroutine into an error wrapping
// ErrFailed stored in *errp, and calls onFatal (if not nil) first. Other
// panics continue.
func catchFatal(errp *error, onFatal func(error)) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(*fatalError)
	if !ok {
		panic(r)
	}
	err := fmt.Errorf("%w: %s", ErrFailed, f.msg)
	if onFatal != nil {
		onFatal(err)
	}
	*errp = err
}
