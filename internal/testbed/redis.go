package testbed

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// RedisOptions shape a redis-server process.
type RedisOptions struct {
	// Bin is the redis-server program. Optional; default redis-server on
	// PATH, else in BinDir.
	Bin string
	// Dir is its working folder, where a replica keeps the copy of its
	// master's data while it syncs. Optional; default the caller's.
	Dir string
	// Args are added to its command line (say, "--replicaof", HOST,
	// PORT). Optional.
	Args []string
	// Port is its port on 127.0.0.1. Optional; default a free one.
	Port int
}

// Redis is a redis-server process on 127.0.0.1 that keeps nothing on
// disk.
type Redis struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	opts RedisOptions
	mu   sync.Mutex
	proc *Process
}

// StartRedis starts redis-server on a free port of 127.0.0.1 and waits
// until it answers PING.
func StartRedis(o RedisOptions) (*Redis, error) {
	if o.Bin == "" {
		bin, err := redisServerBin()
		if err != nil {
			return nil, err
		}
		o.Bin = bin
	}
	port := o.Port
	if port == 0 {
		var err error
		if port, err = PickPort(); err != nil {
			return nil, err
		}
	}
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), opts: o}
	return r, r.start()
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	p, err := Start(ProcessOptions{Name: "redis-server", Path: r.opts.Bin, Dir: r.opts.Dir,
		Args: append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--loglevel", "warning"}, r.opts.Args...)})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	if err := Poll(10*time.Second, 20*time.Millisecond, p, func() error { return r.command("PING", "+PONG") }); err != nil {
		r.Stop()
		return fmt.Errorf("redis-server on %s did not answer PING: %w; output:\n%s", r.Addr, err, p.Output(4000))
	}
	return nil
}

// redisServerBin finds redis-server on PATH, else in BinDir.
func redisServerBin() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if bin, err = LookBin("redis-server"); err != nil {
			return "", fmt.Errorf("redis-server is missing: run hack/testbed.sh, or apt-get install -y redis-server")
		}
	}
	return bin, nil
}

// command sends an inline command and expects the reply want.
func (r *Redis) command(cmd, want string) error {
	c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	buf := make([]byte, len(want)+2)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); got != want+"\r\n" {
		return fmt.Errorf("%s: got %q, want %s", cmd, got, want)
	}
	return nil
}

// Flush empties the server (FLUSHALL).
func (r *Redis) Flush() error { return r.command("FLUSHALL", "+OK") }

// Stop kills the server at once (SIGKILL), as a crash would. Calling it
// again does nothing.
func (r *Redis) Stop() {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p != nil {
		p.Stop()
	}
}

// Restart starts the server again on the same address, empty, after Stop
// (or stops it first).
func (r *Redis) Restart() error {
	r.Stop()
	return r.start()
}

// PID is the server's process id; 0 when it is stopped.
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.PID()
}
