package auth_db_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"kemi/kdb"
	"kemi/ksr/ksrtest"
	"kemi/modules/auth"
	"kemi/modules/auth_db"
)

// BenchmarkAuthCheck is KSR.auth_db.auth_check("bench.example",
// "subscriber", 0) called from Lua on a MESSAGE with good credentials
// (a fresh nonce), against a SQLite subscriber table of one row read
// through kdb with calculate_ha1: bench/registrar-loop.sh's auth loop
// in-process. Each call checks the nonce, queries the row and computes
// the digest.
func BenchmarkAuthCheck(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "auth.db")
	db, err := kdb.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		b.Fatal(err)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "bench", Domain: "bench.example", Password: "benchpw"}).Error; err != nil {
		b.Fatal(err)
	}
	db.Close()

	a := auth.New()
	a.Settings().Secret = "bench-secret"
	adb := auth_db.New(a)
	set := adb.Settings()
	set.DBURL, set.CalculateHA1, set.PasswordCol = "sqlite://"+path, true, "password"
	d := ksrtest.Deps(b, io.Discard, a, adb)
	if err := adb.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { adb.Stop(context.Background()) })
	v := ksrtest.NewVM(b, d)

	const realm, user, pw, uri = "bench.example", "bench", "benchpw", "sip:bench@bench.example"
	nonce := a.Nonce(time.Now().Unix())
	ha1 := md5hex(user + ":" + realm + ":" + pw)
	resp := md5hex(ha1 + ":" + nonce + ":" + md5hex("MESSAGE:"+uri))
	v.Bind("MESSAGE " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-bench\r\n" +
		"From: <sip:bench@bench.example>;tag=f1\r\n" +
		"To: <" + uri + ">\r\n" +
		"Call-ID: bench-auth\r\n" +
		"CSeq: 2 MESSAGE\r\n" +
		`Proxy-Authorization: Digest username="bench", realm="bench.example", nonce="` + nonce + `", uri="` + uri + `", response="` + resp + `", algorithm=MD5` + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n")
	if got := v.Eval(`KSR.auth_db.auth_check("bench.example", "subscriber", 0)`); got != "1" {
		b.Fatalf("auth_check = %s, want 1", got)
	}
	v.BenchLoop(b, `function bench(n)
	local A = KSR.auth_db
	for _ = 1, n do
		if A.auth_check("bench.example", "subscriber", 0) ~= 1 then error("auth_check failed") end
	end
end`)
}
