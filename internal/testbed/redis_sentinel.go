package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions shape a Redis master, its replica and three Redis
// Sentinels that watch them (RedisHA).
type SentinelOptions struct {
	// Dir holds the servers' working folders and the Sentinels'
	// configuration files, which they rewrite. Required.
	Dir string
	// Bin is the redis-server program, which runs the Sentinels too.
	// Optional; default redis-server on PATH, else in BinDir.
	Bin string
	// MasterName is the name under which the Sentinels monitor the
	// master. Optional; default "vouch".
	MasterName string
	// DownAfter is the Sentinels' down-after-milliseconds: how long the
	// master must not answer before a Sentinel deems it down. Optional;
	// default 1 s.
	DownAfter time.Duration
	// FailoverTimeout is the Sentinels' failover-timeout. Optional;
	// default 5 s.
	FailoverTimeout time.Duration
	// SentinelPassword, when set, is the Sentinels' requirepass: clients
	// must authenticate to them with it (they use it among themselves
	// too). Optional.
	SentinelPassword string
}

// RedisHA is a real Redis deployment for high availability, on 127.0.0.1:
// a master, one replica of it, and three Sentinels (quorum 2) that fail the
// master over to the replica when it stops answering. Nothing is kept on
// disk but the Sentinels' configuration and the replica's sync file.
type RedisHA struct {
	// MasterName is the name under which the Sentinels monitor the master.
	MasterName string
	// SentinelAddrs are the Sentinels, "127.0.0.1:PORT" each.
	SentinelAddrs []string

	opts      SentinelOptions
	mu        sync.Mutex
	nodes     map[string]*Redis // by address: the first master and its replica
	sentinels []*Process
}

// StartRedisHA starts a master, a replica of it and three Sentinels, and
// waits until the replica is in sync and every Sentinel knows the replica
// and the two other Sentinels, so that a failover can happen at once.
func StartRedisHA(o SentinelOptions) (*RedisHA, error) {
	if o.Dir == "" {
		return nil, errors.New("testbed: SentinelOptions.Dir is required")
	}
	if o.Bin == "" {
		bin, err := redisServerBin()
		if err != nil {
			return nil, err
		}
		o.Bin = bin
	}
	if o.MasterName == "" {
		o.MasterName = "vouch"
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	h := &RedisHA{MasterName: o.MasterName, opts: o, nodes: map[string]*Redis{}}
	ok := false
	defer func() {
		if !ok {
			h.Stop()
		}
	}()

	master, err := h.startNode("master")
	if err != nil {
		return nil, err
	}
	mhost, mport, _ := net.SplitHostPort(master.Addr)
	replica, err := h.startNode("replica", "--replicaof", mhost, mport)
	if err != nil {
		return nil, err
	}
	if err := pollRedis(10*time.Second, func(ctx context.Context) error {
		return checkReplicaSynced(ctx, replica.Addr)
	}); err != nil {
		return nil, fmt.Errorf("replica %s did not sync with master %s: %w", replica.Addr, master.Addr, err)
	}

	for i := range 3 {
		if err := h.startSentinel(i, mhost, mport); err != nil {
			return nil, err
		}
	}
	for _, addr := range h.SentinelAddrs {
		if err := pollRedis(20*time.Second, func(ctx context.Context) error {
			return h.checkSentinelReady(ctx, addr)
		}); err != nil {
			return nil, fmt.Errorf("sentinel %s: %w; output:\n%s", addr, err, h.sentinelOutput(addr))
		}
	}
	ok = true
	return h, nil
}

// startNode starts a redis-server in its own folder under Dir.
func (h *RedisHA) startNode(name string, args ...string) (*Redis, error) {
	dir := filepath.Join(h.opts.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := StartRedis(RedisOptions{Bin: h.opts.Bin, Dir: dir, Args: append([]string{"--dir", dir}, args...)})
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", name, err)
	}
	h.mu.Lock()
	h.nodes[r.Addr] = r
	h.mu.Unlock()
	return r, nil
}

// startSentinel writes the configuration of Sentinel i, which monitors the
// master at mhost:mport, and starts it.
func (h *RedisHA) startSentinel(i int, mhost, mport string) error {
	port, err := PickPort()
	if err != nil {
		return err
	}
	dir := filepath.Join(h.opts.Dir, fmt.Sprintf("sentinel%d", i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := h.opts.MasterName
	conf := strings.Join([]string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(port),
		"dir " + dir,
		"loglevel notice",
		fmt.Sprintf("sentinel monitor %s %s %s 2", name, mhost, mport),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", name, h.opts.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", name, h.opts.FailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}, "\n") + "\n"
	if h.opts.SentinelPassword != "" {
		conf += "requirepass " + strconv.Quote(h.opts.SentinelPassword) + "\n"
	}
	file := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p, err := Start(ProcessOptions{Name: "redis-sentinel " + addr, Path: h.opts.Bin, Dir: dir, Args: []string{file, "--sentinel"}})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.sentinels = append(h.sentinels, p)
	h.SentinelAddrs = append(h.SentinelAddrs, addr)
	h.mu.Unlock()
	return nil
}

// checkSentinelReady checks that the Sentinel at addr knows the replica and
// the two other Sentinels.
func (h *RedisHA) checkSentinelReady(ctx context.Context, addr string) error {
	s := h.sentinelClient(addr)
	defer s.Close()
	m, err := s.Master(ctx, h.MasterName).Result()
	if err != nil {
		return err
	}
	if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
		return fmt.Errorf("knows %s replicas and %s other sentinels, want 1 and 2", m["num-slaves"], m["num-other-sentinels"])
	}
	return nil
}

// sentinelClient returns a client of the Sentinel at addr.
func (h *RedisHA) sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, Password: h.opts.SentinelPassword, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
}

// checkReplicaSynced checks that the server at addr is a replica whose
// link to its master is up.
func checkReplicaSynced(ctx context.Context, addr string) error {
	info, err := nodeInfo(ctx, addr)
	if err != nil {
		return err
	}
	if !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_link_status:up") {
		return errors.New("not in sync yet")
	}
	return nil
}

// nodeInfo returns the INFO replication section of the server at addr.
func nodeInfo(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	return c.Info(ctx, "replication").Result()
}

// Master returns the address of the master, as the first Sentinel that
// answers names it.
func (h *RedisHA) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, addr := range h.SentinelAddrs {
		s := h.sentinelClient(addr)
		hp, err := s.GetMasterAddrByName(ctx, h.MasterName).Result()
		s.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
			continue
		}
		return net.JoinHostPort(hp[0], hp[1]), nil
	}
	return "", errors.Join(errs...)
}

// KillMaster kills the master the Sentinels name (SIGKILL), as a crash
// would, and returns its address.
func (h *RedisHA) KillMaster(ctx context.Context) (string, error) {
	addr, err := h.Master(ctx)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	node := h.nodes[addr]
	h.mu.Unlock()
	if node == nil {
		return "", fmt.Errorf("the sentinels name %s, which is none of the servers started", addr)
	}
	node.Stop()
	return addr, nil
}

// WaitFailover waits until the Sentinels name a master other than old and
// that server says it is a master, and returns its address.
func (h *RedisHA) WaitFailover(ctx context.Context, old string, timeout time.Duration) (string, error) {
	var addr string
	err := pollRedis(timeout, func(ctx context.Context) error {
		a, err := h.Master(ctx)
		if err != nil {
			return err
		}
		if a == old {
			return fmt.Errorf("the sentinels still name %s", old)
		}
		info, err := nodeInfo(ctx, a)
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master") {
			return fmt.Errorf("%s is not a master yet", a)
		}
		addr = a
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("no failover from %s: %w; sentinel output:\n%s", old, err, h.sentinelOutput(h.SentinelAddrs[0]))
	}
	return addr, nil
}

// sentinelOutput returns the end of the output of the Sentinel at addr.
func (h *RedisHA) sentinelOutput(addr string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, a := range h.SentinelAddrs {
		if a == addr && i < len(h.sentinels) {
			return h.sentinels[i].Output(3000)
		}
	}
	return ""
}

// Stop kills the Sentinels and the servers (SIGKILL). Calling it again
// does nothing.
func (h *RedisHA) Stop() {
	h.mu.Lock()
	sentinels, nodes := h.sentinels, h.nodes
	h.sentinels, h.nodes = nil, map[string]*Redis{}
	h.mu.Unlock()
	for _, p := range sentinels {
		p.Stop()
	}
	for _, n := range nodes {
		n.Stop()
	}
}

// pollRedis calls check, each call bounded by a second, until it succeeds
// or timeout has passed; it returns check's last error.
func pollRedis(timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
