package mail

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/maddy"
	"github.com/enarx/secbot/outbox"
)

// heldData is a TCP proxy to the submission listener for one connection
// that holds back the end of a message's data until released: the last
// bytes a client sent before it died, still on their way to the server.
// Released, they reach the server, which takes the message.
type heldData struct {
	ln       net.Listener
	upstream string
	held     chan struct{} // closed when the end of data arrived
	release  chan struct{} // closed by the test: let it through
	done     chan struct{} // closed once the server answered it and closed
}

func holdData(t *testing.T, upstream string) *heldData {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldData{ln: ln, upstream: upstream, held: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { _ = ln.Close() })
	go h.serve()
	return h
}

func (h *heldData) serve() {
	client, err := h.ln.Accept()
	if err != nil {
		return
	}
	defer client.Close()
	up, err := net.Dial("tcp", h.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		// The server's answers, to the client while it is there.
		defer close(h.done)
		buf := make([]byte, 4096)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				_, _ = client.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	end := []byte("\r\n.\r\n")
	var tail []byte
	buf := make([]byte, 4096)
	for {
		n, err := client.Read(buf)
		if err != nil {
			return
		}
		chunk := buf[:n]
		if bytes.Contains(append(tail, chunk...), end) {
			close(h.held)
			<-h.release
			_, _ = up.Write(chunk)
			_, _ = io.WriteString(up, "QUIT\r\n") // its client is gone
			<-h.done
			return
		}
		if _, err := up.Write(chunk); err != nil {
			return
		}
		tail = append(tail, chunk...)
		tail = tail[max(0, len(tail)-len(end)):]
	}
}

// A standby retries a send within a second of the active instance's
// death. The dead instance had sent its message whole (the end of its
// data on the way) and died before the server's answer; the server takes
// it a moment later. The retry must wait for that, find the copy the same
// transaction left in the security mailbox, file it in Sent, and send
// nothing: the reporter gets the message once.
func TestARetriedSendWaitsForTheMessageStillOnItsWay(t *testing.T) {
	srv, cfg := server(t, false)
	retrySettle = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := Outgoing{
		To: reporter, Subject: "Re: [SR-2026-0007] Your security report",
		MessageID: MessageID(12, outbox.MailNonce(), disclosure.CaseID{Year: 2026, Seq: 7}, security),
		Text:      "Your report is SR-2026-0007.",
	}
	// The first attempt, through the proxy: it dies once its data is sent.
	proxy := holdData(t, srv.Submission)
	dying := *cfg
	dying.SMTP = &url.URL{Scheme: "smtp", Host: proxy.ln.Addr().String()}
	dyingCtx, die := context.WithCancel(ctx)
	failed := make(chan error, 1)
	go func() { failed <- dying.Send(dyingCtx, out, false) }()
	select {
	case <-proxy.held:
	case err := <-failed:
		t.Fatalf("the first attempt ended before its data was sent: %v", err)
	}
	die()
	if err := <-failed; err == nil {
		t.Fatal("the first attempt did not fail when it died")
	}
	// The server takes the dead instance's message 400 ms into the retry.
	time.AfterFunc(400*time.Millisecond, func() { close(proxy.release) })
	if err := cfg.Send(ctx, out, true); err != nil {
		t.Fatal(err)
	}
	<-proxy.done // the server answered the first attempt's data
	ours := func(m []mailtest.Message) (n int) {
		for _, msg := range m {
			if bytes.Contains(msg.Raw, []byte("<"+out.MessageID+">")) {
				n++
			}
		}
		return n
	}
	inbox, err := srv.Messages(reporter, password, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := srv.Messages(security, password, SentFolder)
	if err != nil {
		t.Fatal(err)
	}
	if ours(inbox) != 1 || ours(sent) != 1 {
		t.Errorf("the reporter has %d copies and Sent %d, want 1 each: the retry did not wait for the message on its way", ours(inbox), ours(sent))
	}
}
