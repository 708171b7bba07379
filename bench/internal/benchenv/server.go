package benchenv

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is a verification server process under test.
type Server struct {
	// Name labels it in tables.
	Name string
	// URL is the Gatekeeper verify endpoint.
	URL string
	// Args are its command-line arguments, for the results.
	Args []string
	cmd  *exec.Cmd
	log  *os.File
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	if s.log != nil {
		s.log.Close()
	}
}

// CPU returns the user plus system time the server has used so far.
func (s *Server) CPU() time.Duration { return ProcCPU(s.PID()) }

// PeakRSS returns the server's peak resident set size so far, in bytes.
func (s *Server) PeakRSS() int64 { return procStatus(s.PID(), "VmHWM:") }

// RSS returns the server's resident set size now, in bytes.
func (s *Server) RSS() int64 { return procStatus(s.PID(), "VmRSS:") }

// ProcCPU returns the user plus system CPU time of process pid, from
// /proc/PID/stat (clock ticks of 10 ms).
func ProcCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func procStatus(pid int, key string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line[len(key):])
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// TLSDir makes (once) a CA, a server certificate for 127.0.0.1 and a
// client certificate with `vouch serve --generate-tls`; every server under
// test uses the same server certificate.
func (e *Env) TLSDir() (string, error) {
	dir := filepath.Join(e.Work, "tls")
	if _, err := os.Stat(filepath.Join(dir, "tls.crt")); err == nil {
		return dir, nil
	}
	out, err := exec.Command(e.Bin["vouch"], "serve", "--generate-tls", dir).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("vouch serve --generate-tls: %v\n%s", err, out)
	}
	return dir, nil
}

// Client returns an HTTPS client that trusts the servers' CA, as
// Gatekeeper's provider client does (HTTP/1.1, keep-alive), with up to
// conns connections.
func (e *Env) Client(conns int) (*http.Client, error) {
	dir, err := e.TLSDir()
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", dir)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}}, nil
}

// StartVouch starts `vouch serve` on a free port with the shared TLS
// certificate and args (verifiers, registries, cache).
func (e *Env) StartVouch(name string, args ...string) (*Server, error) {
	dir, err := e.TLSDir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	all := append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key")}, args...)
	return e.startServer(name, e.Bin["vouch"], all, fmt.Sprintf("https://127.0.0.1:%d/gatekeeper/v1/verify", port), nil)
}

// StartRatify starts `ratify serve` on a free port with the shared TLS
// certificate, the config file and args (cache flags).
func (e *Env) StartRatify(name, config string, args ...string) (*Server, error) {
	dir, err := e.TLSDir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	all := append([]string{"serve", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--cert-dir", dir, "-c", config}, args...)
	home := e.Dir("ratify-home-" + name)
	return e.startServer(name, e.Bin["ratify"], all, fmt.Sprintf("https://127.0.0.1:%d/ratify/gatekeeper/v1/verify", port), []string{"HOME=" + home})
}

func (e *Env) startServer(name, path string, args []string, url string, env []string) (*Server, error) {
	logf, err := os.Create(filepath.Join(e.Dir("logs"), name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &Server{Name: name, URL: url, Args: args, cmd: cmd, log: logf}
	client, err := e.Client(1)
	if err != nil {
		s.Stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[]}}`)))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			data, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("%s did not answer in 60 s (%v); log:\n%.3000s", name, err, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Redis is a redis-server process on 127.0.0.1.
type Redis struct {
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server without persistence on a free port.
func (e *Env) StartRedis() (*Redis, error) {
	if err := e.Need("redis-server"); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.Bin["redis-server"], "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
	cmd.Dir = e.Dir("redis")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out, err := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "ping").Output(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Flush empties Redis.
func (r *Redis) Flush() error {
	host, port, _ := strings.Cut(r.Addr, ":")
	return exec.Command("redis-cli", "-h", host, "-p", port, "flushall").Run()
}

// Stop kills redis-server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}
