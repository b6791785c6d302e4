// Package matrixtest runs a real Dendrite homeserver on 127.0.0.1 and
// drives Matrix users against it, for secbot's integration tests and demo.
package matrixtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/synapseadmin"

	"github.com/enarx/secbot/internal/testenv/daemon"
)

// DendriteVersion is the homeserver secbot is tested against.
const DendriteVersion = "v0.13.8"

// ServerName is the server name of the test homeserver.
const ServerName = "localhost"

const sharedSecret = "secbot-test-registration"

// CacheDir is where Dendrite's binaries are installed once and reused:
// $SECBOT_CACHE, else the user cache dir's secbot folder.
func CacheDir() (string, error) {
	if dir := os.Getenv("SECBOT_CACHE"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "secbot"), nil
}

// DendriteBin returns the directory holding Dendrite's binaries, installing
// them with `go install` on first use.
func DendriteBin() (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "dendrite-"+DendriteVersion, "bin")
	if _, err := os.Stat(filepath.Join(bin, "dendrite")); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "install", "github.com/matrix-org/dendrite/cmd/...@"+DendriteVersion)
	// Dendrite is built as it is released: no project build flags, its own cgo SQLite.
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=", "CGO_ENABLED=1")
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("install dendrite %s: %w\n%s", DendriteVersion, err, out)
	}
	return bin, nil
}

// Server is a running Dendrite.
type Server struct {
	URL  string
	Dir  string
	bin  string
	addr string
	proc *daemon.Process
}

// Start runs a fresh Dendrite with its data in dir (created if needed), on a
// free port of 127.0.0.1, with federation and rate limits off.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := DendriteBin()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := run(dir, filepath.Join(bin, "generate-keys"), "--private-key", filepath.Join(dir, "matrix_key.pem")); err != nil {
		return nil, err
	}
	cfg, err := output(dir, filepath.Join(bin, "generate-config"), "-ci", "-server", ServerName, "-dir", dir)
	if err != nil {
		return nil, err
	}
	yaml := string(cfg)
	for old, repl := range map[string]string{
		"disable_federation: false":              "disable_federation: true",
		"registration_shared_secret: complement": "registration_shared_secret: " + sharedSecret,
		"private_key: matrix_key.pem":            "private_key: " + filepath.Join(dir, "matrix_key.pem"),
		"level: trace":                           "level: warn",
		// Accounts are made with the shared secret; nobody signs up.
		"registration_disabled: false": "registration_disabled: true",
	} {
		if !strings.Contains(yaml, old) {
			return nil, fmt.Errorf("dendrite's generated config has no %q to change", old)
		}
		yaml = strings.ReplaceAll(yaml, old, repl)
	}
	if err := os.WriteFile(filepath.Join(dir, "dendrite.yaml"), []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, Dir: dir, bin: bin, addr: addr}
	return s, s.start(ctx)
}

func (s *Server) start(ctx context.Context) error {
	// Dendrite logs the access tokens of accounts it creates: its output
	// stays in its own folder, never in test output.
	p, err := daemon.Start(s.Dir, "dendrite.out", filepath.Join(s.bin, "dendrite"), "-config", filepath.Join(s.Dir, "dendrite.yaml"), "-http-bind-address", s.addr)
	if err != nil {
		return err
	}
	s.proc = p
	return p.WaitReady(ctx, 60*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get(s.URL + "/_matrix/client/versions")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Stop terminates Dendrite and waits for it to exit.
func (s *Server) Stop() error {
	s.proc.Stop()
	s.proc = nil
	return nil
}

// Kill ends Dendrite as a crash would (SIGKILL): unlike Stop, it answers
// no request still open, so a client's long poll fails at once.
func (s *Server) Kill() error {
	s.proc.Kill()
	s.proc = nil
	return nil
}

// Restart stops Dendrite and starts it again on the same address and data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Register creates an account through the shared-secret admin API.
func (s *Server) Register(ctx context.Context, localpart, password string) error {
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		return err
	}
	admin := &synapseadmin.Client{Client: cli}
	_, err = admin.SharedSecretRegister(ctx, sharedSecret, synapseadmin.ReqSharedSecretRegister{Username: localpart, Password: password})
	if err != nil {
		return fmt.Errorf("register %s: %w", localpart, err)
	}
	return nil
}

// UserID is the full Matrix ID of a local user.
func UserID(localpart string) string { return "@" + localpart + ":" + ServerName }

// FreeAddr returns a free 127.0.0.1 address to listen on.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(dir, name string, args ...string) error {
	_, err := output(dir, name, args...)
	return err
}

func output(dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, stderr.String())
	}
	return out, nil
}
