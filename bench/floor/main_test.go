package main

import (
	"bytes"
	"testing"
)

func TestAnswerRaw(t *testing.T) {
	req := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK-1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	var out bytes.Buffer
	if !answerRaw([]byte(req), &out) {
		t.Fatal("a request was not answered")
	}
	want := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK-1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
	out.Reset()
	if answerRaw([]byte("SIP/2.0 200 OK\r\nCall-ID: c\r\n\r\n"), &out) || out.Len() != 0 {
		t.Fatal("a response was answered")
	}
	if answerRaw([]byte("no line end"), &out) || out.Len() != 0 {
		t.Fatal("a datagram without a line was answered")
	}
}
