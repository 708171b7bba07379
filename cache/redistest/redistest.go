// Package redistest starts a real redis-server on 127.0.0.1 for tests, the
// way net/http/httptest starts an HTTP server: a thin testing.TB wrapper
// over testbed.StartRedis (and testbed.StartRedisHA for a master, a replica
// and Sentinels). The server keeps nothing on disk and is stopped,
// by its process id, when the test ends.
//
// Tests fail, never skip, when redis-server is missing: hack/testbed.sh
// installs Debian's redis-server.
package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// Sentinels is a Redis master, a replica of it and three Sentinels that
// fail the master over to the replica within seconds (testbed.RedisHA).
type Sentinels struct {
	// MasterName is the name under which the Sentinels monitor the master.
	MasterName string
	// Addrs are the Sentinels, "127.0.0.1:PORT" each.
	Addrs []string

	t  testing.TB
	ha *testbed.RedisHA
}

// StartSentinels starts a master, its replica and three Sentinels on
// 127.0.0.1, ready to fail over; they are stopped when the test ends. With
// a sentinelPassword, the Sentinels require it (requirepass).
func StartSentinels(t testing.TB, sentinelPassword string) *Sentinels {
	t.Helper()
	ha, err := testbed.StartRedisHA(testbed.SentinelOptions{Dir: t.TempDir(), SentinelPassword: sentinelPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ha.Stop)
	return &Sentinels{MasterName: ha.MasterName, Addrs: ha.SentinelAddrs, t: t, ha: ha}
}

// Master returns the address of the master the Sentinels name.
func (s *Sentinels) Master() string {
	s.t.Helper()
	addr, err := s.ha.Master(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return addr
}

// KillMaster kills the master (SIGKILL), as a crash would, and returns its
// address.
func (s *Sentinels) KillMaster() string {
	s.t.Helper()
	addr, err := s.ha.KillMaster(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return addr
}

// WaitFailover waits up to timeout for the Sentinels to name a master
// other than old that says it is a master, and returns its address. It
// returns an error rather than failing the test, so that it can run beside
// a test's load.
func (s *Sentinels) WaitFailover(old string, timeout time.Duration) (string, error) {
	return s.ha.WaitFailover(context.Background(), old, timeout)
}
