package rctest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scriptsDir is scripts/rocketchat, where Rocket.Chat's clients are pinned.
func scriptsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "scripts", "rocketchat"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// npmCI installs the pinned packages once per lock file: a stamp in
// node_modules holds the lock file's hash, so later runs skip npm.
func npmCI(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".secbot-package-lock.sha256")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm is needed to install Rocket.Chat's client libraries (apt-get install npm): ", err)
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--legacy-peer-deps", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startWithHooks is Start with two hooks for the node test, outside
// /api and /websocket (and so outside Requests()): /_test/drop drops the
// realtime connections, /_test/wait-subscribed?userId= waits until that
// user is subscribed to __my_messages__ again.
func startWithHooks(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_test/drop", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.DropConnections())
	})
	mux.HandleFunc("/_test/wait-subscribed", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		if err := s.WaitSubscribed(ctx, r.URL.Query().Get("userId"), 1); err != nil {
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
		}
	})
	mux.Handle("/", s)
	s.http = httptest.NewServer(mux)
	s.base = s.http.URL
	t.Cleanup(s.Close)
	return s
}

// TestRocketChatsOwnClientSpeaksToTheStandIn runs scripts/rocketchat's
// client.test.mjs: Rocket.Chat's own @rocket.chat/ddp-client and
// api-client log in with a resume token, subscribe to __my_messages__,
// receive a message, reconnect by themselves after the connection is
// dropped and receive the next, and call REST — and every request they
// send passes Rocket.Chat's validators.
func TestRocketChatsOwnClientSpeaksToTheStandIn(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to run Rocket.Chat's client libraries (apt-get install nodejs npm): ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := scriptsDir(t)
	npmCI(t, ctx, dir)

	s := startWithHooks(t)
	bot := newUser(t, s, "bot")
	s.SetRoles(bot.id, "bot")
	alice := newUser(t, s, "alice")

	args := []string{"--test", "client.test.mjs"}
	// Node before 22 has WebSocket (which ddp-client uses) only behind a flag.
	if exec.CommandContext(ctx, node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)").Run() != nil {
		args = append([]string{"--experimental-websocket"}, args...)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"RC_URL="+s.URL(),
		"RC_BOT_ID="+bot.id, "RC_BOT_TOKEN="+bot.token,
		"RC_ALICE_ID="+alice.id, "RC_ALICE_TOKEN="+alice.token,
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	t.Logf("node's test runner:\n%s", out.String())

	// The duplicate _id is the one request meant to fail; none may have
	// been refused by Rocket.Chat's validators.
	noInvalid(t, s)
	seen := map[string]int{}
	for _, r := range s.Requests() {
		seen[r.Method+" "+r.Route]++
		if r.UserID == "" && r.Method != "DDP" {
			t.Errorf("%s %s arrived without valid credentials", r.Method, r.Route)
		}
	}
	for _, want := range []string{"DDP connect", "DDP method login", "DDP sub stream-room-messages", "GET me", "POST im.create", "POST chat.sendMessage", "GET im.history", "POST groups.create"} {
		if seen[want] == 0 {
			t.Errorf("Rocket.Chat's client never called %s (calls: %v)", want, seen)
		}
	}
	if seen["POST chat.sendMessage"] != 4 {
		t.Errorf("chat.sendMessage called %d times, want 4", seen["POST chat.sendMessage"])
	}
	if seen["DDP connect"] != 2 || seen["DDP method login"] != 2 {
		t.Errorf("want two connections and two logins (before and after the drop): %v", seen)
	}
}
