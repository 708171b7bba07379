// Package redistest starts a real redis-server on 127.0.0.1 for tests, the
// way net/http/httptest starts an HTTP server: a thin testing.TB wrapper
// over testbed.StartRedis. The server keeps nothing on disk and is stopped,
// by its process id, when the test ends.
//
// Tests fail, never skip, when redis-server is missing: hack/testbed.sh
// installs Debian's redis-server.
package redistest

import (
	"fmt"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
)

// Server is a running redis-server.
type Server struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	t     testing.TB
	redis *testbed.Redis
}

// Start starts redis-server on a free port of 127.0.0.1 and waits until it
// accepts connections.
func Start(t testing.TB) *Server {
	t.Helper()
	r, err := testbed.StartRedis(testbed.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return &Server{Addr: r.Addr, t: t, redis: r}
}

// Kill stops the server at once (SIGKILL), as a crash would. Calling it
// again, or after the test, does nothing.
func (s *Server) Kill() { s.redis.Stop() }

// Restart starts the server again on the same address, empty, after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.redis.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// String describes the server for test messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
