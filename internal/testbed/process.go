package testbed

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ProcessOptions say what Start runs and how it is stopped.
type ProcessOptions struct {
	// Name names the process in messages. Optional; default the
	// program's file name.
	Name string
	// Path is the program. Required.
	Path string
	// Args are its arguments. Optional.
	Args []string
	// Env is added to the environment. Optional.
	Env []string
	// Dir is its working folder. Optional; default the caller's.
	Dir string
	// LogFile, when set, receives the process's output (created or
	// truncated); otherwise the output is kept in memory, its last
	// 64 KiB readable with Output.
	LogFile string
	// StopSignal is what Stop sends first. Optional; default SIGKILL.
	StopSignal os.Signal
	// StopTimeout is how long Stop waits after StopSignal before it
	// kills the process. Optional; default 10 s.
	StopTimeout time.Duration
}

// Process is a program started by Start. On Linux it is killed when the
// process that started it dies, should that happen before Stop.
type Process struct {
	// Name names it in messages.
	Name string

	opts ProcessOptions
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error
	stop sync.Once
}

// Start starts a process. Stop it (by its process id) with Stop.
func Start(o ProcessOptions) (*Process, error) {
	if o.Name == "" {
		o.Name = o.Path[strings.LastIndexByte(o.Path, '/')+1:]
	}
	p := &Process{Name: o.Name, opts: o, done: make(chan struct{})}
	p.cmd = exec.Command(o.Path, o.Args...)
	p.cmd.Env = append(os.Environ(), o.Env...)
	p.cmd.Dir = o.Dir
	p.cmd.SysProcAttr = sysProcAttr()
	var log io.Writer
	if o.LogFile != "" {
		f, err := os.Create(o.LogFile)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy
		log = f
	} else {
		p.out = &tailBuffer{max: 64 << 10}
		log = p.out
	}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Launch is Start that fails the test on error and stops the process when
// the test ends; when the test failed, the end of its output is logged.
func Launch(t testing.TB, o ProcessOptions) *Process {
	t.Helper()
	p, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- end of %s's output:\n%s", p.Name, p.Output(6000))
		}
	})
	return p
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends the stop signal, waits up to the stop timeout, then kills the
// process and waits for it. Later calls do nothing.
func (p *Process) Stop() {
	p.stop.Do(func() {
		sig, wait := p.opts.StopSignal, p.opts.StopTimeout
		if sig == nil {
			sig = os.Kill
		}
		if wait <= 0 {
			wait = 10 * time.Second
		}
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(wait):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Exited returns an error, with the end of the output, once the process
// has exited, and nil while it runs.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v; end of its output:\n%s", p.Name, p.err, p.Output(4000))
	default:
		return nil
	}
}

// Output returns the last n bytes (at most) of what the process wrote.
func (p *Process) Output(n int) string {
	var b []byte
	if p.out != nil {
		b = p.out.Bytes()
	} else {
		var err error
		if b, err = os.ReadFile(p.opts.LogFile); err != nil {
			return err.Error()
		}
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Poll calls check every interval until it returns nil, p (when not nil)
// exits, or timeout passes; then it returns nil, p's exit or what check
// said last.
func Poll(timeout, interval time.Duration, p *Process, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p != nil {
			if perr := p.Exited(); perr != nil {
				return perr
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not so after %s: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// WaitFor is Poll every 200 ms that fails the test, saying what it waited
// for, when check does not pass in time.
func WaitFor(t testing.TB, what string, timeout time.Duration, p *Process, check func() error) {
	t.Helper()
	if err := Poll(timeout, 200*time.Millisecond, p, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// HTTPReady returns nil when GET url with client (default
// http.DefaultClient) answers one of the statuses (default 200 OK).
func HTTPReady(client *http.Client, url string, statuses ...int) error {
	if client == nil {
		client = http.DefaultClient
	}
	if len(statuses) == 0 {
		statuses = []int{http.StatusOK}
	}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if !slices.Contains(statuses, resp.StatusCode) {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it; it is safe for
// concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what the buffer holds.
func (b *tailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf)
}
