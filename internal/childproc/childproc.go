// Package childproc holds what vouch needs to run a program it does not
// trust (a verifier plugin, a notation verification plugin): killing its
// whole process group, and keeping a bounded head of what it writes.
package childproc

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
)

// KillGroup kills the process group that p leads (start it with
// SysProcAttr.Setpgid), so that the program's own children die with it.
func KillGroup(p *os.Process) error {
	if p == nil {
		return nil
	}
	err := syscall.Kill(-p.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// HeadWriter keeps the first Max bytes written to it. Without Full, it
// discards the rest, never blocking the writer; with Full, it calls Full
// once, and fails with Overflow, when more than Max bytes come.
type HeadWriter struct {
	Max      int
	Full     func()
	Overflow error

	mu   sync.Mutex
	buf  bytes.Buffer
	over bool
}

func (w *HeadWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	room := w.Max - w.buf.Len()
	if w.Full != nil && len(b) > room {
		if !w.over {
			w.over = true
			w.Full()
		}
		return 0, w.Overflow
	}
	if room > 0 {
		w.buf.Write(b[:min(room, len(b))])
	}
	return len(b), nil
}

// Bytes returns a copy of what was kept.
func (w *HeadWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}
