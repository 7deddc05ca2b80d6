package registrar_test

import (
	"context"
	"io"
	"testing"

	"kemi/ksr/ksrtest"
	"kemi/modules/registrar"
	"kemi/modules/usrloc"
)

// BenchmarkRegistrar times from Lua, on a MESSAGE to an AOR with one
// contact in usrloc's memory (db_mode 0): KSR.pv.sets("$ru", uri) alone
// (ru_set) and followed by KSR.registrar.lookup("location") (lookup,
// which includes the $ru set, as bench/registrar-loop.sh subtracts it).
func BenchmarkRegistrar(b *testing.B) {
	ul := usrloc.New()
	ul.Settings().Preload = []string{"location"}
	reg := registrar.New(ul)
	d := ksrtest.Deps(b, io.Discard, ul, reg)
	if err := ul.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ul.Stop(context.Background()) })
	dom, err := ul.Domain("location")
	if err != nil {
		b.Fatal(err)
	}
	err = ul.Tx(dom, "bench", func(cs []*usrloc.Contact) ([]*usrloc.Contact, error) {
		return append(cs, &usrloc.Contact{Ruid: ul.NewRuid(), AOR: "bench", Contact: "sip:bench@127.0.0.1:5070;transport=udp",
			Received: "sip:127.0.0.1:5070", Expires: ul.Now() + 3600, Q: -1, CallID: "c", CSeq: 1, Methods: -1,
			UserAgent: "sipp", Modified: ul.Now()}), nil
	})
	if err != nil {
		b.Fatal(err)
	}
	v := ksrtest.NewVM(b, d)
	const uri = "sip:bench@bench.example"
	v.Bind("MESSAGE " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-bench\r\n" +
		"From: <sip:bench@bench.example>;tag=f1\r\n" +
		"To: <" + uri + ">\r\n" +
		"Call-ID: bench-lookup\r\n" +
		"CSeq: 2 MESSAGE\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n")
	if got := v.Eval(`KSR.registrar.lookup("location")`); got != "1" {
		b.Fatalf("lookup = %s, want 1", got)
	}
	if got := v.Eval(`KSR.pv.get("$ru") .. " " .. KSR.pv.get("$du")`); got != "sip:bench@127.0.0.1:5070;transport=udp sip:127.0.0.1:5070" {
		b.Fatalf("after lookup: %s", got)
	}
	b.Run("ru_set", func(b *testing.B) {
		v.BenchLoop(b, `function bench(n)
	local PV = KSR.pv
	for _ = 1, n do
		PV.sets("$ru", "`+uri+`")
	end
end`)
	})
	b.Run("lookup", func(b *testing.B) {
		v.BenchLoop(b, `function bench(n)
	local PV, R = KSR.pv, KSR.registrar
	for _ = 1, n do
		PV.sets("$ru", "`+uri+`")
		if R.lookup("location") ~= 1 then error("lookup failed") end
	end
end`)
	})
}
