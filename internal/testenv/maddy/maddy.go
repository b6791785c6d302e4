// Package mailtest runs a real mail server (maddy) on 127.0.0.1 for
// secbot's mail tests, e2e tests and demo: IMAP and submission for the
// accounts, and an open SMTP port standing in for the Internet's mail.
package mailtest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/enarx/secbot/internal/testenv/daemon"
	"github.com/enarx/secbot/internal/testenv/dendrite"
)

// MaddyVersion is the mail server secbot is tested against.
const MaddyVersion = "v0.8.1"

// Domain is the mail domain of the test server's accounts.
const Domain = "example.test"

const maddyModule = "github.com/foxcpp/maddy"

// MaddyBin returns the path of the maddy binary, building it into the
// cache on first use. maddy's go.mod replaces some of its dependencies with
// its own forks, which `go install pkg@version` refuses: it is built in a
// throwaway module that carries the same replacements.
func MaddyBin() (string, error) {
	cache, err := matrixtest.CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "maddy-"+MaddyVersion, "bin")
	exe := filepath.Join(bin, "maddy")
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	work, err := os.MkdirTemp("", "secbot-maddy-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	// maddy is built as it is released: no project build flags, cgo SQLite.
	env := append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=1", "GOWORK=off")
	goCmd := func(args ...string) ([]byte, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	if _, err := goCmd("mod", "init", "secbot.invalid/maddy-build"); err != nil {
		return "", err
	}
	out, err := goCmd("mod", "download", "-json", maddyModule+"@"+MaddyVersion)
	if err != nil {
		return "", err
	}
	var mod struct{ GoMod string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.GoMod == "" {
		return "", fmt.Errorf("locate maddy's go.mod: %v", err)
	}
	replaces, err := replacements(mod.GoMod)
	if err != nil {
		return "", err
	}
	if _, err := goCmd("get", "-tool", maddyModule+"/cmd/maddy@"+MaddyVersion); err != nil {
		return "", err
	}
	for _, r := range replaces {
		if _, err := goCmd("mod", "edit", "-replace", r); err != nil {
			return "", err
		}
	}
	if _, err := goCmd("mod", "tidy"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "install", maddyModule+"/cmd/maddy")
	cmd.Dir, cmd.Env = work, append(env, "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install maddy %s: %w\n%s", MaddyVersion, err, out)
	}
	return exe, nil
}

// replacements reads the replace directives of a go.mod as OLD=NEW@VERSION.
func replacements(gomod string) ([]string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	inBlock := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "replace (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "replace "):
			line = strings.TrimPrefix(line, "replace ")
		case !inBlock:
			continue
		}
		old, repl, ok := strings.Cut(line, "=>")
		fields := strings.Fields(repl)
		if !ok || len(fields) != 2 {
			continue
		}
		out = append(out, strings.Fields(old)[0]+"="+fields[0]+"@"+fields[1])
	}
	return out, sc.Err()
}

// Server is a running maddy.
type Server struct {
	Dir string
	// IMAP and Submission are host:port of the accounts' IMAP and SMTP
	// submission (authenticated) listeners; MX accepts anyone's mail for
	// the domain's accounts without authentication, as the Internet
	// would deliver it.
	IMAP, Submission, MX string
	// TLS is true when the listeners speak TLS from the start (imaps,
	// smtps) with the certificate in CAFile; otherwise they are plain TCP
	// (STARTTLS offered when TLS is on).
	TLS    bool
	CAFile string

	exe  string
	proc *daemon.Process
}

// Options tune a test mail server.
type Options struct {
	// TLS serves IMAP and submission over implicit TLS with a fresh
	// self-signed certificate (Server.CAFile).
	TLS bool
	// DKIM signs what the accounts submit with a DKIM key of Domain
	// (selector DKIMSelector) that maddy makes at start; DKIMRecord gives
	// the TXT record a resolver should serve for it.
	DKIM bool
}

// DKIMSelector is the selector of the test server's DKIM key.
const DKIMSelector = "default"

// Start runs a fresh maddy with its data in dir on free ports of 127.0.0.1.
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	exe, err := MaddyBin()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, exe: exe, TLS: opts.TLS}
	for _, addr := range []*string{&s.IMAP, &s.Submission, &s.MX} {
		if *addr, err = matrixtest.FreeAddr(); err != nil {
			return nil, err
		}
	}
	tlsLine, scheme := "tls off", "tcp"
	if opts.TLS {
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := selfSigned(cert, key); err != nil {
			return nil, err
		}
		s.CAFile = cert
		tlsLine, scheme = "tls file "+cert+" "+key, "tls"
	}
	sign := ""
	if opts.DKIM {
		sign = fmt.Sprintf("\tmodify {\n\t\tdkim %s %s\n\t}\n", Domain, DKIMSelector)
	}
	conf := fmt.Sprintf(`state_dir %[1]s/state
runtime_dir %[1]s/run
hostname localhost
%[2]s
log %[1]s/maddy.log

auth.pass_table local_authdb {
	table sql_table {
		driver sqlite3
		dsn %[1]s/credentials.db
		table_name passwords
	}
}

storage.imapsql local_mailboxes {
	driver sqlite3
	dsn %[1]s/imapsql.db
}

msgpipeline local_routing {
	destination %[3]s {
		deliver_to &local_mailboxes
	}
	default_destination {
		reject 550 5.1.1 "User doesn't exist"
	}
}

smtp tcp://%[4]s {
	deliver_to &local_routing
}

submission %[5]s://%[6]s {
	auth &local_authdb
%[8]s	deliver_to &local_routing
}

imap %[5]s://%[7]s {
	auth &local_authdb
	storage &local_mailboxes
}
`, dir, tlsLine, Domain, s.MX, scheme, s.Submission, s.IMAP, sign)
	if err := os.WriteFile(filepath.Join(dir, "maddy.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return s, s.start(ctx)
}

func (s *Server) maddy(stdin string, args ...string) error {
	cmd := exec.Command(s.exe, append([]string{"-config", filepath.Join(s.Dir, "maddy.conf")}, args...)...)
	cmd.Dir = s.Dir
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("maddy %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// AddAccount creates a mail account (login and mailbox) for address.
func (s *Server) AddAccount(address, password string) error {
	if err := s.maddy(password+"\n", "creds", "create", address); err != nil {
		return err
	}
	return s.maddy("", "imap-acct", "create", address)
}

func (s *Server) start(ctx context.Context) error {
	p, err := daemon.Start(s.Dir, "maddy.out", s.exe, "-config", filepath.Join(s.Dir, "maddy.conf"), "run")
	if err != nil {
		return err
	}
	s.proc = p
	return p.WaitReady(ctx, 60*time.Second, 50*time.Millisecond, func() bool {
		for _, addr := range []string{s.IMAP, s.Submission, s.MX} {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			_ = conn.Close()
		}
		return true
	})
}

// DKIMRecord returns the DNS name and TXT record of the DKIM key maddy
// signs with (Options.DKIM).
func (s *Server) DKIMRecord() (name, txt string, err error) {
	data, err := os.ReadFile(filepath.Join(s.Dir, "state", "dkim_keys", Domain+"_"+DKIMSelector+".dns"))
	if err != nil {
		return "", "", fmt.Errorf("maddy's DKIM record: %w", err)
	}
	return DKIMSelector + "._domainkey." + Domain, strings.TrimSpace(string(data)), nil
}

// Stop terminates maddy and waits for it to exit.
func (s *Server) Stop() error {
	s.proc.Stop()
	s.proc = nil
	return nil
}

// Restart stops maddy and starts it again on the same addresses and data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// selfSigned writes a fresh self-signed certificate for localhost and
// 127.0.0.1, which the tests trust as their CA.
func selfSigned(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "secbot test mail server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}
