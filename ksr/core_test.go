package ksr_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/modules/sl"
	"kemi/modules/tm"
	"kemi/sipnet"
)

// coreHarness is one Lua state with KSR registered on an Env, plus the log
// and the replies it produced.
type coreHarness struct {
	t       *testing.T
	L       *lua.LState
	env     *ksr.Env
	log     *bytes.Buffer
	replies []*sip.Response
}

func newCoreHarness(t *testing.T) *coreHarness {
	t.Helper()
	h := &coreHarness{t: t, log: &bytes.Buffer{}}
	d := &ksr.Deps{
		Log:    slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return time.Unix(1700000000, 123456000) },
		Shv:    ksr.NewSharedVars(),
		Myself: func() []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5060")} },
	}
	// KSR.sl and KSR.tm are used to check replies and argument rules
	t2, err := ksr.NewTable(ksr.Core(), sl.New(), tm.New())
	if err != nil {
		t.Fatal(err)
	}
	d.Table = t2
	h.env = ksr.NewEnv(d, "test/0", "test", 0)
	h.L = lua.NewState()
	t.Cleanup(h.L.Close)
	ksr.Register(h.L, h.env)
	return h
}

const coreInvite = "INVITE sip:bob@example.com:5080;transport=udp SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport\r\n" +
	"From: \"Alice\" <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: call-1@10.0.0.1\r\n" +
	"CSeq: 42 INVITE\r\n" +
	"Max-Forwards: 70\r\n" +
	"User-Agent: tester/1.0\r\n" +
	"X-Multi: one\r\n" +
	"X-Multi: two\r\n" +
	"Content-Length: 4\r\n\r\nbody"

// bind parses raw and makes it the current message, replies captured.
func (h *coreHarness) bind(raw string) *ksr.Msg {
	h.t.Helper()
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	req := sipnet.NewFakeRequest(m.(*sip.Request))
	req.Src = netip.MustParseAddrPort("10.0.0.1:5062")
	req.Sink = func(r *sip.Response) error { h.replies = append(h.replies, r); return nil }
	msg := &ksr.Msg{Req: req, Time: time.Unix(1700000000, 0)}
	h.env.Msg = msg
	return msg
}

// eval runs "return <expr>" and returns the value.
func (h *coreHarness) eval(expr string) lua.LValue {
	h.t.Helper()
	if err := h.L.DoString("return " + expr); err != nil {
		h.t.Fatalf("%s: %v", expr, err)
	}
	v := h.L.Get(-1)
	h.L.Pop(1)
	return v
}

func TestArgumentRules(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(coreInvite)
	tests := []struct {
		expr string
		want string
		log  string
	}{
		// bad arity: logged, returns false, no Lua error
		{`KSR.pv.get()`, "false", "invalid number of parameters"},
		{`KSR.sl.send_reply(200)`, "false", "KSR.sl.send_reply"},
		// extra arguments are ignored, as Kamailio does (app_lua_api.c
		// sr_kemi_lua_exec_func_ex at 5.6.3 reads only the declared
		// parameters); kemi's old per-closure arity check refused them
		{`KSR.hdr.is_present("a", "b")`, "-1", ""},
		{`KSR.hdr.is_present("From", "b")`, "1", ""},
		// more than SR_KEMI_PARAMS_MAX (6) arguments: logged, false
		{`KSR.hdr.is_present(1, 2, 3, 4, 5, 6, 7)`, "false", "invalid number of parameters"},
		// a number for a STR is converted as tostring
		{`KSR.pv.sets("$var(n)", 12)`, "true", ""},
		{`KSR.pv.get("$var(n)")`, "12", ""},
		// a non-numeric INT becomes 0 (and 0 is an invalid code)
		{`KSR.sl.send_reply("abc", "X")`, "-1", "invalid reply"},
		// a numeric string INT is converted
		{`KSR.pv.seti("$var(i)", "7")`, "true", ""},
		{`KSR.pv.get("$var(i)")`, "7", ""},
		// BOOL: -1 is true
		{`KSR.is_INVITE()`, "true", ""},
		{`KSR.is_BYE()`, "false", ""},
	}
	for _, tt := range tests {
		h.log.Reset()
		got := h.eval(tt.expr).String()
		if got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
		if tt.log != "" && !strings.Contains(h.log.String(), tt.log) {
			t.Errorf("%s: log %q lacks %q", tt.expr, h.log.String(), tt.log)
		}
	}
}

func TestPseudoVariables(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(coreInvite)
	tests := map[string]string{
		`$ru`:                 "sip:bob@example.com:5080;transport=udp",
		`$rU`:                 "bob",
		`$rd`:                 "example.com",
		`$rp`:                 "5080",
		`$rm`:                 "INVITE",
		`$ci`:                 "call-1@10.0.0.1",
		`$cs`:                 "42",
		`$fu`:                 "sip:alice@atlanta.com",
		`$fU`:                 "alice",
		`$fd`:                 "atlanta.com",
		`$fn`:                 `"Alice"`,
		`$ft`:                 "ft1",
		`$tu`:                 "sip:bob@example.com",
		`$tU`:                 "bob",
		`$td`:                 "example.com",
		`$tt`:                 "nil",
		`$si`:                 "10.0.0.1",
		`$sp`:                 "5062",
		`$ua`:                 "tester/1.0",
		`$hdr(X-Multi)`:       "one",
		`$hdr(x-multi)`:       "one",
		`$hdr(X-None)`:        "nil",
		`$mb`:                 "", // checked below
		`$ml`:                 "",
		`$rb`:                 "body",
		`$cl`:                 "4",
		`$Ts`:                 "1700000000",
		`$TV(s)`:              "1700000000",
		`$TV(Sn)`:             "1700000000.123456",
		`$du`:                 "nil",
		`$rs`:                 "nil",
		`$nosuchpv`:           "nil",
		`$var(unset)`:         "0", // Kamailio: created at parse time, integer 0
		`$shv(unset)`:         "0",
		`$(ru)`:               "sip:bob@example.com:5080;transport=udp",
		`$rtimer_worker`:      "nil", // only in an rtimer group
		`$(hdr(X-Multi)[1])`:  "two",
		`$(hdr(X-Multi)[-1])`: "two",
		`$(hdr(X-Multi)[*])`:  "one,two",
	}
	for pv, want := range tests {
		if want == "" {
			continue
		}
		if got := h.eval(`KSR.pv.get("` + pv + `")`).String(); got != want {
			t.Errorf("%s = %q, want %q", pv, got, want)
		}
	}
	if mb := h.eval(`KSR.pv.get("$mb")`).String(); !strings.HasPrefix(mb, "INVITE sip:bob@example.com") {
		t.Errorf("$mb = %q", mb)
	}
	if got := h.eval(`KSR.pv.gete("$hdr(X-None)")`).String(); got != "" {
		t.Errorf("gete = %q", got)
	}
	if got := h.eval(`KSR.pv.getw("$hdr(X-None)")`).String(); got != "<null>" {
		t.Errorf("getw = %q", got)
	}
	if got := h.eval(`KSR.pv.getvs("$hdr(X-None)", "dflt")`).String(); got != "dflt" {
		t.Errorf("getvs = %q", got)
	}
	if got := h.eval(`KSR.pv.getvn("$hdr(X-None)", 5)`).String(); got != "5" {
		t.Errorf("getvn = %q", got)
	}
	if got := h.eval(`KSR.pv.geti("$hdr(X-None)")`).String(); got != "0" {
		t.Errorf("geti = %q", got)
	}
	if got := h.eval(`KSR.pv.is_null("$hdr(X-None)")`).String(); got != "true" {
		t.Errorf("is_null = %q", got)
	}
	if got := h.eval(`KSR.pv.is_null("$nosuchpv")`).String(); got != "true" {
		t.Errorf("is_null of an invalid pv = %q", got)
	}
}

func TestPseudoVariableSetters(t *testing.T) {
	h := newCoreHarness(t)
	msg := h.bind(coreInvite)
	steps := []struct{ expr, want string }{
		{`KSR.pv.sets("$ru", "sip:carol@chicago.com")`, "true"},
		{`KSR.pv.get("$rU")`, "carol"},
		{`KSR.pv.sets("$rU", "dave")`, "true"},
		{`KSR.pv.sets("$rd", "denver.com")`, "true"},
		{`KSR.pv.seti("$rp", 5090)`, "true"},
		{`KSR.pv.get("$ru")`, "sip:dave@denver.com:5090"},
		{`KSR.pv.sets("$ru", "::not a uri")`, "false"},
		{`KSR.pv.sets("$du", "sip:10.1.1.1:5060;transport=tcp")`, "true"},
		{`KSR.pv.get("$du")`, "sip:10.1.1.1:5060;transport=tcp"},
		{`KSR.pv.sets("$shv(total)", "x")`, "true"},
		{`KSR.pv.seti("$shv(n)", 3)`, "true"},
		{`KSR.pv.get("$shv(n)")`, "3"},
		{`KSR.pv.sets("$avp(a)", "v")`, "true"},
		{`KSR.pv.get("$avp(a)")`, "v"},
		{`KSR.pv.unset("$avp(a)")`, "true"},
		{`KSR.pv.get("$avp(a)")`, "nil"},
		{`KSR.pv.sets("$ci", "x")`, "true"}, // read-only: a no-op that succeeds, as Kamailio
		{`KSR.pv.sets("$var(q)", "name")`, "true"},
		{`KSR.pv.sets("$var($var(q))", "dyn")`, "true"},
		{`KSR.pv.get("$var(name)")`, "dyn"},
	}
	for _, s := range steps {
		if got := h.eval(s.expr).String(); got != s.want {
			t.Errorf("%s = %s, want %s", s.expr, got, s.want)
		}
	}
	if msg.DstURI != "sip:10.1.1.1:5060;transport=tcp" {
		t.Errorf("DstURI %q", msg.DstURI)
	}
	if h.env.D.Shv.Get("n") != int64(3) {
		t.Errorf("$shv(n) in Go = %#v", h.env.D.Shv.Get("n"))
	}
	// $var survives the message, as Kamailio's per-process $var does.
	h.bind(coreInvite)
	if got := h.eval(`KSR.pv.get("$var(name)")`).String(); got != "dyn" {
		t.Errorf("$var after a new message = %q", got)
	}
}

func TestHeaderFunctions(t *testing.T) {
	h := newCoreHarness(t)
	msg := h.bind(coreInvite)
	steps := []struct{ expr, want string }{
		{`KSR.hdr.is_present("X-Multi")`, "1"},
		{`KSR.hdr.is_present("X-Absent")`, "-1"},
		{`KSR.hdr.get("X-Multi")`, "one"},
		{`KSR.hdr.get_idx("X-Multi", 1)`, "two"},
		{`KSR.hdr.get_idx("X-Multi", -1)`, "two"},
		{`KSR.hdr.get_idx("X-Multi", 5)`, "nil"},
		{`KSR.hdr.get("X-Absent")`, "nil"},
		{`KSR.hdr.gete("X-Absent")`, ""},
		{`KSR.hdr.append("X-App: 1\r\n")`, "1"},
		{`KSR.hdr.insert("X-First: 0\r\n")`, "1"},
		{`KSR.hdr.append_after("X-After: a\r\n", "Call-ID")`, "1"},
		{`KSR.hdr.insert_before("X-Before: b\r\n", "CSeq")`, "1"},
		{`KSR.hdr.append("no colon here")`, "-1"},
		{`KSR.hdr.remove("X-Multi")`, "1"},
		{`KSR.hdr.is_present("X-Multi")`, "-1"},
		{`KSR.hdr.remove("X-Absent")`, "1"},
		{`KSR.hdr.rmappend("X-App", "X-App: 2\r\n")`, "1"},
		{`KSR.hdr.get("X-App")`, "2"},
		{`KSR.hdr.append_to_reply("X-Reply: r\r\n")`, "1"},
	}
	for _, s := range steps {
		if got := h.eval(s.expr).String(); got != s.want {
			t.Errorf("%s = %q, want %q", s.expr, got, s.want)
		}
	}
	names := []string{}
	for _, hd := range msg.Req.Msg.Headers() {
		names = append(names, hd.Name())
	}
	order := strings.Join(names, ",")
	if !strings.HasPrefix(order, "X-First,Via") || !strings.Contains(order, "Call-ID,X-After") || !strings.Contains(order, "X-Before,CSeq") {
		t.Errorf("header order %s", order)
	}
	if len(msg.ReplyHdrs) != 1 || msg.ReplyHdrs[0].Value() != "r" {
		t.Errorf("reply headers %v", msg.ReplyHdrs)
	}
}

func TestReplies(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(coreInvite)
	if got := h.eval(`KSR.hdr.append_to_reply("X-Why: test\r\n")`).String(); got != "1" {
		t.Fatal(got)
	}
	if got := h.eval(`KSR.sl.send_reply(404, "Not Here")`).String(); got != "1" {
		t.Fatalf("send_reply = %s", got)
	}
	if len(h.replies) != 1 {
		t.Fatalf("%d replies", len(h.replies))
	}
	r := h.replies[0]
	if r.StatusCode != 404 || r.Reason != "Not Here" {
		t.Fatalf("reply %d %s", r.StatusCode, r.Reason)
	}
	if v := r.Via(); v == nil || v.Params.GetOr("received", "") != "10.0.0.1" || v.Params.GetOr("rport", "") != "5062" {
		t.Errorf("Via %v: want received and rport filled", r.Via())
	}
	if to := r.To(); !to.Params.Has("tag") {
		t.Errorf("no To tag")
	}
	if h := r.GetHeader("X-Why"); h == nil || h.Value() != "test" {
		t.Errorf("append_to_reply header missing")
	}
	if cs := r.CSeq(); cs.SeqNo != 42 || cs.MethodName != sip.INVITE {
		t.Errorf("CSeq %v", cs)
	}
	for _, bad := range []string{`KSR.sl.send_reply(200, "")`, `KSR.sl.send_reply(99, "x")`, `KSR.sl.send_reply(700, "x")`, `KSR.tm.t_reply(200, "OK")`} {
		if got := h.eval(bad).String(); got != "-1" {
			t.Errorf("%s = %s, want -1", bad, got)
		}
	}
	h.bind(strings.Replace(strings.Replace(coreInvite, "INVITE sip", "ACK sip", 1), "42 INVITE", "42 ACK", 1))
	if got := h.eval(`KSR.sl.send_reply(200, "OK")`).String(); got != "-1" {
		t.Errorf("reply to ACK = %s", got)
	}
	if len(h.replies) != 1 {
		t.Errorf("%d replies after refused ones", len(h.replies))
	}
}

func TestMethodsAndLogging(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(coreInvite)
	steps := []struct{ expr, want string }{
		{`KSR.is_method("invite")`, "true"},
		{`KSR.is_method("BYE")`, "false"},
		{`KSR.is_method_in("BI")`, "true"},
		{`KSR.is_method_in("i")`, "true"},
		{`KSR.is_method_in("ARO")`, "false"},
		{`KSR.is_myself("sip:127.0.0.1:5060")`, "true"},
		{`KSR.is_myself("sip:127.0.0.1")`, "true"},
		{`KSR.is_myself("sip:10.9.9.9")`, "false"},
		{`KSR.is_myself_ruri()`, "false"},
		{`KSR.is_request()`, "true"},
		{`KSR.is_reply()`, "false"},
		{`KSR.info("hello from lua\n")`, "false"}, // no result: false, as app_lua 5.6
	}
	for _, s := range steps {
		if got := h.eval(s.expr).String(); got != s.want {
			t.Errorf("%s = %s, want %s", s.expr, got, s.want)
		}
	}
	if !strings.Contains(h.log.String(), `msg="hello from lua"`) {
		t.Errorf("log: %s", h.log)
	}
	h.log.Reset()
	h.eval(`KSR.log("warn", "careful")`)
	h.eval(`KSR.log("bogus", "as err")`)
	if !strings.Contains(h.log.String(), "level=WARN msg=careful") || !strings.Contains(h.log.String(), "level=ERROR msg=\"as err\"") {
		t.Errorf("KSR.log levels: %s", h.log)
	}
}

func TestExitAndDrop(t *testing.T) {
	h := newCoreHarness(t)
	msg := h.bind(coreInvite)
	cur := &luavm.Current{}
	g, err := luavm.Build(1, []string{"x.lua"}, func(string) ([]byte, error) {
		return []byte(`
			n = 0
			function f() n = n + 1; KSR.x.exit(); n = 100 end
			function d() KSR.x.drop(); n = 200 end`), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cur.Store(g)
	vm, err := luavm.New(cur, luavm.Options{Init: func(L *lua.LState) error { ksr.Register(L, h.env); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	h.env.Msg = msg
	if err := vm.CallGlobal("f"); err != nil {
		t.Fatal(err)
	}
	if n := vm.L.GetGlobal("n").String(); n != "1" {
		t.Fatalf("exit did not end the function: n=%s", n)
	}
	if msg.Drop {
		t.Fatal("exit set drop")
	}
	if err := vm.CallGlobal("d"); err != nil {
		t.Fatal(err)
	}
	if !msg.Drop || vm.L.GetGlobal("n").String() != "1" {
		t.Fatalf("drop: Drop=%v n=%s", msg.Drop, vm.L.GetGlobal("n"))
	}
}

func TestLevelFromDebug(t *testing.T) {
	for _, tt := range []struct {
		debug int
		want  slog.Level
	}{{3, ksr.LevelDbg}, {4, ksr.LevelDbg}, {2, ksr.LevelInfo}, {1, ksr.LevelNotice}, {0, ksr.LevelWarn}, {-1, ksr.LevelErr}, {-2, ksr.LevelCrit}, {-5, ksr.LevelAlert}} {
		if got := ksr.LevelFromDebug(tt.debug); got != tt.want {
			t.Errorf("debug=%d: %v, want %v", tt.debug, got, tt.want)
		}
	}
}
