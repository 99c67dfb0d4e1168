package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// statusLine shows a run's progress on one line of a terminal, redrawn
// twice a second; on anything else it prints only the notes.
type statusLine struct {
	w    io.Writer
	tty  bool
	quit chan struct{}
	done chan struct{}
}

func newStatusLine(w io.Writer) *statusLine {
	s := &statusLine{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.tty = true
		}
	}
	return s
}

// start redraws text() until stop.
func (s *statusLine) start(text func() string) {
	if !s.tty {
		return
	}
	s.quit, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			s.draw(text())
			select {
			case <-s.quit:
				s.draw("")
				return
			case <-t.C:
			}
		}
	}()
}

func (s *statusLine) draw(line string) {
	fmt.Fprintf(s.w, "\r%-"+strconv.Itoa(max(len(line), 100))+"s\r%s", "", line)
}

func (s *statusLine) stop() {
	if s.quit != nil {
		close(s.quit)
		<-s.done
		s.quit = nil
	}
}

// note prints one finished step.
func (s *statusLine) note(line string) {
	fmt.Fprintln(s.w, strings.TrimSpace(line))
}

// procCPUSeconds reads a process's user and system CPU time from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s: Linux's
// USER_HZ).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of process %d (--cpu needs Linux's /proc): %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	const userHZ = 100
	return float64(utime+stime) / userHZ, nil
}

// selfCPUSeconds is the user and system CPU time this process has used.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
