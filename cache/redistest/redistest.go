// Package redistest starts a real redis-server on 127.0.0.1 for tests, the
// way net/http/httptest starts an HTTP server. The server keeps nothing on
// disk and is stopped, by its process id, when the test ends.
//
// Tests fail, never skip, when redis-server is missing: hack/testbed.sh
// installs Debian's redis-server.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	port int
}

// Start starts redis-server on a free port of 127.0.0.1 and waits until it
// accepts connections.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, port: freePort(t)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redis-server is missing (%v): run hack/testbed.sh, or apt-get install -y redis-server", err)
	}
	s.out = &bytes.Buffer{}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--save", "", "--appendonly", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.ping() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	s.t.Fatalf("redis-server on %s did not answer PING within 10s; output:\n%s", s.Addr, s.out.String())
}

// ping sends an inline PING and waits for +PONG.
func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// Kill stops the server at once (SIGKILL), as a crash would. Calling it
// again, or after the test, does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same address, empty, after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// String describes the server for test messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
