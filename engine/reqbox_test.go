package engine

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
)

// TestRequestMsgOncePerRequest: a received request's ksr.Msg comes with
// it, once; a second routing of it, and a copy handed to another worker,
// get messages of their own, so that no two routings share a Msg (modules
// remember "their" message by its address).
func TestRequestMsgOncePerRequest(t *testing.T) {
	e := &Engine{}
	r, key := e.NewRequest()
	if len(key) != 0 || cap(key) < 64 {
		t.Fatalf("key room: len %d cap %d", len(key), cap(key))
	}
	r.Msg = sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "example.org"})
	box := r.Ext.(*reqBox)
	first := requestMsg(r)
	if first != &box.msg {
		t.Fatal("the first Msg is not the one allocated with the request")
	}
	seen := map[*ksr.Msg]bool{first: true}
	for _, m := range []*ksr.Msg{requestMsg(r), requestMsg(r.Handoff())} {
		if seen[m] {
			t.Fatal("a Msg given out twice")
		}
		seen[m] = true
	}
	r2, _ := e.NewRequest()
	if m := requestMsg(r2); seen[m] {
		t.Fatal("a second request shares a Msg")
	}
}

// TestResponseMsgOncePerReply is TestRequestMsgOncePerRequest for replies.
func TestResponseMsgOncePerReply(t *testing.T) {
	e := &Engine{}
	r := e.NewResponse()
	r.Msg = sip.NewResponse(200, "OK")
	first := requestMsgOf(t, r)
	seen := map[*ksr.Msg]bool{first: true}
	for _, m := range []*ksr.Msg{responseMsg(r), responseMsg(r.Handoff())} {
		if seen[m] {
			t.Fatal("a Msg given out twice")
		}
		seen[m] = true
	}
	if m := responseMsg(e.NewResponse()); seen[m] {
		t.Fatal("a second reply shares a Msg")
	}
}

func requestMsgOf(t *testing.T, r *sipnet.Response) *ksr.Msg {
	t.Helper()
	m := responseMsg(r)
	if m != &r.Ext.(*resBox).msg {
		t.Fatal("the first Msg is not the one allocated with the reply")
	}
	return m
}
