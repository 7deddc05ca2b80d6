package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// responder is a TLS server answering every request with 200 (or 404 for
// every third one when some404), echoing the Call-ID.
func responder(t *testing.T, some404 bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c, some404)
		}
	}()
	return ln.Addr().String()
}

func serve(c net.Conn, some404 bool) {
	defer c.Close()
	r := bufio.NewReader(c)
	n := 0
	for {
		var callID string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Call-ID: "); ok {
				callID = v
			}
		}
		n++
		code := 200
		if some404 && n%3 == 0 {
			code = 404
		}
		body := "x"
		fmt.Fprintf(c, "SIP/2.0 %d Whatever\r\nCall-ID: %s\r\nContent-Length: %d\r\n\r\n%s", code, callID, len(body), body)
	}
}

func TestRunCountsReplies(t *testing.T) {
	addr := responder(t, false)
	res, err := run(addr, 2, 400, 500*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.sent < 150 || res.ok != res.sent {
		t.Fatalf("%v: want about 200 sent, all answered 200", res)
	}
}

func TestRunCountsOnly200(t *testing.T) {
	addr := responder(t, true)
	res, err := run(addr, 1, 300, 500*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Every third reply is a 404: about a third fails.
	if failed := res.sent - res.ok; failed != res.sent/3 {
		t.Fatalf("%v: want %d failed", res, res.sent/3)
	}
}

func TestRunRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := run(addr, 1, 10, 100*time.Millisecond, time.Second); err == nil {
		t.Fatal("no error for a closed port")
	}
}
