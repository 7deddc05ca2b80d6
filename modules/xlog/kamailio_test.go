package xlog_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"kemi/modules/internal/kamtest"
)

// formats are format strings both servers log through KSR.xlog, for a
// request with two X-A headers: their return codes go back in X-Result,
// the logged text is compared from the logs.
var formats = []string{
	"plain text",
	"ru=$ru user=$rU host=$rd port=$rp",
	"$(ru) and $(rU)",
	"a=$hdr(X-A) none=$hdr(X-None)",
	"$(hdr(X-A)[0]) $(hdr(X-A)[1]) $(hdr(X-A)[-1]) $(hdr(X-A)[5]) $(hdr(X-A)[*])",
	"method=$rm cseq=$cs ua=$ua ct=$ct",
	"var=$var(xl) avp=$avp(xl) shv=$shv(xl)",
	"dollar $$ and $($) end",
	"tail$ru",
	"$var(nope)|$avp(nope)|$shv(nope)",
	"nested $var($var(xlname))",
	"$ru$rm$rU",
	"x=$hdr(x-a)",
}

// bad are format strings both refuse (-1, nothing logged).
var bad = []string{"cost 5$", "$nosuchpv", "$(ru", "$hdr(X-A", "$ ", "$hdr()"}

// TestAgainstKamailio compares KSR.xlog's return codes and logged text
// with Kamailio 5.6's.
func TestAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "xlog.so", "app_lua.so"}, `
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "app_lua.so"
modparam("app_lua", "load", "%DIR%/eval.lua")
`, map[string]string{"eval.lua": string(script)})
	set := "KSR.pv.sets('$var(xl)', 'v1'); KSR.pv.seti('$avp(xl)', 7); KSR.pv.sets('$shv(xl)', 's1'); " +
		"KSR.pv.sets('$var(xlname)', 'xl');"
	var cases []kamtest.Case
	fn := []string{"xinfo", "xnotice", "xwarn", "xerr", "xcrit", "xalert"}
	for i, f := range formats {
		expr := fmt.Sprintf("(function() %s return KSR.xlog.%s('XL[%d:%s]XL') end)()", set, fn[i%len(fn)], i, f)
		cases = append(cases, kamtest.Eval("MESSAGE", "sip:bob@example.com:5070", expr, "X-A: one", "X-A: two"))
	}
	for i, f := range bad {
		expr := fmt.Sprintf("KSR.xlog.xinfo('XL[b%d:%s]XL')", i, f)
		cases = append(cases, kamtest.Eval("MESSAGE", "sip:bob@example.com", expr))
	}
	for i, l := range []string{"L_INFO", "l_notice", "L_WARN", "L_ERR", "L_CRIT", "L_ALERT", "L_BUG", "bogus"} {
		expr := fmt.Sprintf("KSR.xlog.xlog('%s', 'XL[l%d:$rm]XL')", l, i)
		cases = append(cases, kamtest.Eval("OPTIONS", "sip:bob@example.com", expr))
	}
	cases = append(cases, kamtest.Eval("OPTIONS", "sip:bob@example.com", "KSR.xlog.xdbg('$rm')"))
	p.Compare(t, cases)

	want := len(formats) + 8
	re := regexp.MustCompile(`XL\[([0-9a-z]+):(.*?)\]XL`)
	logged := func(s string, quoted bool) map[string]string {
		m := map[string]string{}
		for _, x := range re.FindAllStringSubmatch(s, -1) {
			v := x[2]
			if quoted {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v)
			}
			m[x[1]] = v
		}
		return m
	}
	var kam, kemi map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		kam, kemi = logged(p.KamLog(), false), logged(p.KemiLog.String(), true)
		if len(kam) >= want && len(kemi) >= want {
			break
		}
	}
	for k, v := range kam {
		if kemi[k] != v {
			t.Errorf("logged %s:\n kamailio: %q\n     kemi: %q", k, v, kemi[k])
		} else {
			t.Logf("logged %s: %q", k, v)
		}
	}
	for k, v := range kemi {
		if _, ok := kam[k]; !ok {
			t.Errorf("kemi logged %s: %q, kamailio nothing", k, v)
		}
	}
}
