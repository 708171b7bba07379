package benchenv

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// Server is a verification server process under test.
type Server struct {
	// Name labels it in tables.
	Name string
	// URL is the Gatekeeper verify endpoint.
	URL string
	// Args are its command-line arguments, for the results.
	Args []string
	proc *testbed.Process
}

// PID is the server's process id.
func (s *Server) PID() int { return s.proc.PID() }

// Stop kills the server and waits for it.
func (s *Server) Stop() { s.proc.Stop() }

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
	dir, addr, err := e.serverPlace()
	if err != nil {
		return nil, err
	}
	all := append([]string{"serve", "--listen", addr,
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key")}, args...)
	return e.startServer(name, e.Bin["vouch"], all, "https://"+addr+"/gatekeeper/v1/verify", e.VouchEnv)
}

// StartVouchBinary starts `vouch serve` as StartVouch does, from the
// program at bin (a vouch built with other tags, see BuildVouch).
func (e *Env) StartVouchBinary(name, bin string, args ...string) (*Server, error) {
	dir, addr, err := e.serverPlace()
	if err != nil {
		return nil, err
	}
	all := append([]string{"serve", "--listen", addr,
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key")}, args...)
	return e.startServer(name, bin, all, "https://"+addr+"/gatekeeper/v1/verify", nil)
}

// StartRatify starts `ratify serve` on a free port with the shared TLS
// certificate, the config file and args (cache flags).
func (e *Env) StartRatify(name, config string, args ...string) (*Server, error) {
	dir, addr, err := e.serverPlace()
	if err != nil {
		return nil, err
	}
	all := append([]string{"serve", "--http", addr, "--cert-dir", dir, "-c", config}, args...)
	home := e.Dir("ratify-home-" + name)
	return e.startServer(name, e.Bin["ratify"], all, "https://"+addr+"/ratify/gatekeeper/v1/verify", []string{"HOME=" + home})
}

// serverPlace returns the shared TLS folder and a free address for a
// server under test.
func (e *Env) serverPlace() (tlsDir, addr string, err error) {
	if tlsDir, err = e.TLSDir(); err != nil {
		return "", "", err
	}
	addr, err = testbed.PickAddr()
	return tlsDir, addr, err
}

func (e *Env) startServer(name, path string, args []string, url string, env []string) (*Server, error) {
	p, err := testbed.Start(testbed.ProcessOptions{Name: name, Path: path, Args: args, Env: env, LogFile: filepath.Join(e.Dir("logs"), name+".log")})
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, URL: url, Args: args, proc: p}
	client, err := e.Client(1)
	if err != nil {
		s.Stop()
		return nil, err
	}
	ready := func() error {
		resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[]}}`)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	if err := testbed.Poll(60*time.Second, 100*time.Millisecond, p, ready); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%s did not answer: %v; log:\n%s", name, err, p.Output(3000))
	}
	return s, nil
}

// StartRedis starts redis-server without persistence on a free port.
func (e *Env) StartRedis() (*testbed.Redis, error) {
	if err := e.Need("redis-server"); err != nil {
		return nil, err
	}
	return testbed.StartRedis(testbed.RedisOptions{Bin: e.Bin["redis-server"], Dir: e.Dir("redis")})
}

// RedisArgs returns the flags of vouch serve that share its caches through
// r: --redis-addr and --redis-hmac-key-file, with a random key written
// into the work directory once and shared by every replica.
func (e *Env) RedisArgs(r *testbed.Redis) ([]string, error) {
	path := filepath.Join(e.Dir("redis-hmac"), "key")
	if _, err := os.Stat(path); err != nil {
		key := make([]byte, 48)
		rand.Read(key)
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return []string{"--redis-addr", r.Addr, "--redis-hmac-key-file", path}, nil
}
