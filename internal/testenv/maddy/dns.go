package mailtest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a DNS server on 127.0.0.1 that answers TXT queries from a fixed
// set of records (DKIM keys, DMARC records) and NXDOMAIN for the rest:
// what a mail test's senders publish, without the Internet. It serves UDP
// and TCP on the same port.
type DNS struct {
	Addr string

	mu   sync.Mutex
	txt  map[string][]string
	udp  net.PacketConn
	tcp  net.Listener
	done sync.WaitGroup
}

// StartDNS serves records (name → TXT values, one record each) until Stop.
func StartDNS(records map[string]string) (*DNS, error) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp", udp.LocalAddr().String())
	if err != nil {
		_ = udp.Close()
		return nil, err
	}
	d := &DNS{Addr: udp.LocalAddr().String(), txt: map[string][]string{}, udp: udp, tcp: tcp}
	for name, v := range records {
		d.Set(name, v)
	}
	d.done.Add(2)
	go d.serveUDP()
	go d.serveTCP()
	return d, nil
}

// Set publishes a TXT record (replacing any of that name).
func (d *DNS) Set(name, txt string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[canonical(name)] = []string{txt}
}

// Stop ends the server.
func (d *DNS) Stop() {
	_ = d.udp.Close()
	_ = d.tcp.Close()
	d.done.Wait()
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func (d *DNS) serveUDP() {
	defer d.done.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := d.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, err := d.answer(buf[:n], 1232); err == nil {
			_, _ = d.udp.WriteTo(out, from)
		}
	}
}

func (d *DNS) serveTCP() {
	defer d.done.Done()
	for {
		conn, err := d.tcp.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			var size [2]byte
			for {
				if _, err := io.ReadFull(conn, size[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(conn, q); err != nil {
					return
				}
				out, err := d.answer(q, 65535)
				if err != nil {
					return
				}
				binary.BigEndian.PutUint16(size[:], uint16(len(out)))
				if _, err := conn.Write(append(size[:], out...)); err != nil {
					return
				}
			}
		}()
	}
}

// answer builds the response to one query, truncated (TC) past limit.
func (d *DNS) answer(query []byte, limit int) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, errors.New("no question")
	}
	resp := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	d.mu.Lock()
	values, ok := d.txt[strings.ToLower(q.Name.String())]
	d.mu.Unlock()
	if !ok {
		resp.RCode = dnsmessage.RCodeNameError
	}
	build := func(h dnsmessage.Header, withAnswers bool) ([]byte, error) {
		b := dnsmessage.NewBuilder(nil, h)
		b.EnableCompression()
		if err := b.StartQuestions(); err != nil {
			return nil, err
		}
		if err := b.Question(q); err != nil {
			return nil, err
		}
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		if withAnswers && q.Type == dnsmessage.TypeTXT {
			for _, v := range values {
				rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET, TTL: 60}
				if err := b.TXTResource(rh, dnsmessage.TXTResource{TXT: chunks(v)}); err != nil {
					return nil, err
				}
			}
		}
		return b.Finish()
	}
	out, err := build(resp, true)
	if err == nil && len(out) > limit {
		resp.Truncated = true
		out, err = build(resp, false)
	}
	return out, err
}

// chunks splits a TXT value into the 255-byte strings a record holds.
func chunks(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}
