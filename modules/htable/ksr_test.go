package htable_test

import (
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// testTables are the tables every binding case starts with.
var testTables = []string{
	"t=>size=4",
	"i=>size=2;initval=0",
	"e=>autoexpire=10",
	"n=>autoexpire=10;updateexpire=0",
	"c=>size=0;initval=5;autoexpire=10",
}

// withAdvance gives the VM advance(seconds), moving the fake clock.
func (f *fixture) withAdvance(v *vm) *vm {
	v.vm.L.SetGlobal("advance", v.vm.L.NewFunction(func(L *lua.LState) int {
		f.clock.Advance(time.Duration(L.CheckInt(1)) * time.Second)
		return 0
	}))
	return v
}

// TestExports checks the return codes and value types of every KSR.htable
// function against ki_ht_* in htable.c at 5.6.3.
func TestExports(t *testing.T) {
	cases := []struct {
		name  string
		chunk string
		want  []any
		log   string // substring the log must hold
	}{
		// sht_get / gete / getw: value, initval, or the null of the mode.
		{"get absent", `return H.sht_get("t","k"), H.sht_gete("t","k"), H.sht_getw("t","k")`, vals(nil, "", "<null>"), ""},
		{"get unknown table", `return H.sht_get("nope","k"), H.sht_gete("nope","k"), H.sht_getw("nope","k")`, vals(nil, "", "<null>"), "table=nope"},
		{"get absent with initval is the int initval", `return H.sht_get("i","k"), H.sht_gete("c","k")`, vals(0, 5), ""},
		{"sets then get", `return H.sht_sets("t","k","v"), H.sht_get("t","k")`, vals(1, "v"), ""},
		{"seti then get is an integer", `return H.sht_seti("t","k",42), H.sht_get("t","k"), type(H.sht_get("t","k"))`, vals(1, 42, "number"), ""},
		{"seti wraps to 32 bits", `H.sht_seti("t","k",2147483648); return H.sht_get("t","k")`, vals(-2147483648), ""},
		{"sets over an integer", `H.sht_seti("t","k",1); H.sht_sets("t","k","x"); return H.sht_get("t","k")`, vals("x"), ""},
		{"seti over a string", `H.sht_sets("t","k","abc"); H.sht_seti("t","k",3); return H.sht_get("t","k")`, vals(3), ""},
		{"sets empty string is a value", `H.sht_sets("t","k",""); return H.sht_get("t","k"), H.sht_is_null("t","k")`, vals("", -1), ""},
		{"sets/seti unknown table", `return H.sht_sets("nope","k","v"), H.sht_seti("nope","k",1)`, vals(-1, -1), ""},

		// sht_is_null: 1 absent, -1 present, -2 initval table, 2 unknown table.
		{"is_null", `H.sht_sets("t","p","v")
			return H.sht_is_null("t","k"), H.sht_is_null("t","p"), H.sht_is_null("i","k"), H.sht_is_null("nope","k")`, vals(1, -1, -2, 2), ""},
		{"is_null expired", `H.sht_sets("e","k","v"); advance(11); return H.sht_is_null("e","k")`, vals(1), ""},

		// sht_inc / sht_dec: the new value or -255.
		{"inc absent without initval", `return H.sht_inc("t","k"), H.sht_get("t","k")`, vals(-255, nil), ""},
		{"inc/dec from initval", `return H.sht_inc("i","k"), H.sht_inc("i","k"), H.sht_dec("i","k"), H.sht_dec("i","x")`, vals(1, 2, 1, -1), ""},
		{"inc an integer", `H.sht_seti("t","k",5); return H.sht_inc("t","k"), H.sht_get("t","k")`, vals(6, 6), ""},
		{"inc a string", `H.sht_sets("t","k","5"); return H.sht_inc("t","k"), H.sht_get("t","k")`, vals(-255, "5"), ""},
		{"inc unknown table", `return H.sht_inc("nope","k"), H.sht_dec("nope","k")`, vals(-255, -255), ""},
		{"inc wraps", `H.sht_seti("t","k",2147483647); return H.sht_inc("t","k")`, vals(-2147483648), ""},
		{"inc expired restarts from initval", `H.sht_inc("c","k"); advance(11)
			return H.sht_get("c","k"), H.sht_inc("c","k")`, vals(5, 6), ""},
		{"inc expired without initval", `H.sht_seti("e","k",1); advance(11); return H.sht_inc("e","k")`, vals(-255), ""},

		// autoexpire: expired once expire < now (whole seconds).
		{"autoexpire", `H.sht_sets("e","k","v"); advance(10); local a = H.sht_get("e","k"); advance(1)
			return a, H.sht_get("e","k")`, vals("v", nil), ""},
		{"no autoexpire never expires", `H.sht_sets("t","k","v"); advance(100000); return H.sht_get("t","k")`, vals("v"), ""},
		{"updateexpire renews on set", `H.sht_sets("e","k","v"); advance(5); H.sht_sets("e","k","w"); advance(10)
			local a = H.sht_get("e","k"); advance(1); return a, H.sht_get("e","k")`, vals("w", nil), ""},
		{"updateexpire=0 keeps the first expiry", `H.sht_sets("n","k","v"); advance(5); H.sht_sets("n","k","w"); advance(6)
			return H.sht_get("n","k")`, vals(nil), ""},
		{"updateexpire renews on inc", `H.sht_inc("c","k"); advance(8); H.sht_inc("c","k"); advance(8)
			return H.sht_get("c","k")`, vals(7), ""},

		// sht_setex / setxs / setxi.
		{"setex", `H.sht_sets("e","k","v"); local r = H.sht_setex("e","k",100); advance(50)
			return r, H.sht_get("e","k"), H.sht_setex("nope","k",1)`, vals(1, "v", -1), ""},
		{"setex 0 removes the expiry", `H.sht_sets("e","k","v"); H.sht_setex("e","k",0); advance(50); return H.sht_get("e","k")`, vals("v"), ""},
		{"setex without autoexpire does nothing", `H.sht_sets("t","k","v"); return H.sht_setex("t","k",1)`, vals(1), ""},
		{"setxs", `local r = H.sht_setxs("e","k","v",3); advance(3); local a = H.sht_get("e","k"); advance(1)
			return r, a, H.sht_get("e","k"), H.sht_setxs("nope","k","v",1)`, vals(1, "v", nil, -1), ""},
		{"setxi returns 0 as Kamailio 5.6.3", `local r = H.sht_setxi("e","k",7,3); local a = H.sht_get("e","k"); advance(4)
			return r, a, H.sht_get("e","k"), H.sht_setxi("nope","k",1,1)`, vals(0, 7, nil, -1), ""},
		{"setxs on a shorter string loses the expiry (Kamailio quirk)", `H.sht_sets("e","k","a"); H.sht_setxs("e","k","abc",3); advance(100)
			return H.sht_get("e","k")`, vals("abc"), ""},
		{"setxs on a longer string keeps it", `H.sht_sets("e","k","abc"); H.sht_setxs("e","k","a",3); advance(4)
			return H.sht_get("e","k")`, vals(nil), ""},
		{"setxs too few arguments", `return H.sht_setxs("e","k","v")`, vals(false), "invalid number of parameters"},

		// sht_rm and friends.
		{"rm", `H.sht_sets("t","k","v"); return H.sht_rm("t","k"), H.sht_get("t","k"), H.sht_rm("t","k"), H.sht_rm("nope","k")`, vals(1, nil, 1, -1), ""},
		{"rm_name_re", `H.sht_sets("t","a1","x"); H.sht_sets("t","A2","x"); H.sht_sets("t","b1","x")
			return H.sht_rm_name_re("t","^a"), H.sht_get("t","a1"), H.sht_get("t","A2"), H.sht_get("t","b1")`, vals(1, nil, nil, "x"), ""},
		{"rm_name_re unknown table is 1", `return H.sht_rm_name_re("nope","x"), H.sht_rm_value_re("nope","x")`, vals(1, 1), ""},
		{"rm_name_re bad or empty expression", `return H.sht_rm_name_re("t","("), H.sht_rm_name_re("t","")`, vals(-1, -1), "bad regular expression"},
		{"rm_value_re string values only", `H.sht_sets("t","a","foo"); H.sht_sets("t","b","bar"); H.sht_seti("t","c",5)
			return H.sht_rm_value_re("t","^fo|5"), H.sht_get("t","a"), H.sht_get("t","b"), H.sht_get("t","c")`, vals(1, nil, "bar", 5), ""},
		{"rm_name sw and re", `H.sht_sets("t","ab","x"); H.sht_sets("t","ac","x"); H.sht_sets("t","b","x"); H.sht_sets("t","cd","x")
			return H.sht_rm_name("t","sw","a"), H.sht_rm_name("t","re","^c"), H.sht_get("t","ab"), H.sht_get("t","ac"), H.sht_get("t","b"), H.sht_get("t","cd")`,
			vals(1, 1, nil, nil, "x", nil), ""},
		{"rm_name bad op, unknown table, empty value", `return H.sht_rm_name("t","eq","a"), H.sht_rm_name("nope","sw","a"), H.sht_rm_name("t","sw","")`, vals(-1, -1, -1), "unsupported match operator"},
		{"rm_value sw", `H.sht_sets("t","a","foo"); H.sht_sets("t","b","bar")
			return H.sht_rm_value("t","sw","fo"), H.sht_get("t","a"), H.sht_get("t","b")`, vals(1, nil, "bar"), ""},

		// sht_match_name / sht_match_str_value: 1 a match, -1 none or error.
		{"match_name", `H.sht_sets("t","alice","x"); H.sht_seti("t","bob",1)
			return H.sht_match_name("t","eq","bob"), H.sht_match_name("t","eq","carol"), H.sht_match_name("t","sw","ali"),
				H.sht_match_name("t","re","^B"), H.sht_match_name("t","ne","alice"), H.sht_match_name("t","xx","a"),
				H.sht_match_name("nope","eq","a"), H.sht_match_name("t","eq","")`, vals(1, -1, 1, 1, 1, -1, -1, -1), ""},
		{"match_str_value skips integers", `H.sht_seti("t","k",5); H.sht_sets("t","s","five")
			return H.sht_match_str_value("t","eq","5"), H.sht_match_str_value("t","eq","five"), H.sht_match_str_value("t","re","^fi")`, vals(-1, 1, 1), ""},
		{"match_name sees an expired item until the sweep (every 20 s from start)", `H.sht_sets("e","k","v"); advance(11)
			local a, b = H.sht_match_name("e","eq","k"), H.sht_get("e","k"); advance(8); local c = H.sht_match_name("e","eq","k"); advance(1)
			return a, b, c, H.sht_match_name("e","eq","k")`, vals(1, nil, 1, -1), ""},
		{"match_name ne on an empty table", `return H.sht_match_name("t","ne","x")`, vals(-1), ""},

		// sht_reset gives 0 (ki_ht_reset_by_name), -1 unknown.
		{"reset", `H.sht_sets("t","a","x"); H.sht_seti("t","b",1)
			return H.sht_reset("t"), H.sht_get("t","a"), H.sht_get("t","b"), H.sht_reset("nope")`, vals(0, nil, nil, -1), ""},

		// sht_lock / sht_unlock: re-entrant within the worker.
		{"lock is re-entrant", `return H.sht_lock("t","k"), H.sht_lock("t","k"), H.sht_seti("t","k",3), H.sht_inc("t","k"),
			H.sht_unlock("t","k"), H.sht_unlock("t","k"), H.sht_lock("nope","k"), H.sht_unlock("nope","k")`, vals(1, 1, 1, 4, 1, 1, -1, -1), ""},
		{"unlock not held", `return H.sht_unlock("t","k")`, vals(1), "not locked by this worker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, testTables...)
			v := f.withAdvance(f.vm("w", ""))
			got := v.run("local H = KSR.htable\n" + c.chunk)
			if !same(got, c.want) {
				t.Errorf("got %#v, want %#v\nlog:\n%s", got, c.want, f.log)
			}
			if c.log != "" && !strings.Contains(f.log.String(), c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, f.log)
			}
		})
	}
}

// TestIterators walks tables with the sht_iterator_* functions.
func TestIterators(t *testing.T) {
	cases := []struct {
		name  string
		chunk string
		want  []any
	}{
		{"walk every item once", `for i = 1, 20 do H.sht_seti("t", "k"..i, i) end
			local n, sum = 0, 0
			H.sht_iterator_start("it", "t")
			while H.sht_iterator_next("it") == 1 do
				n = n + 1; sum = sum + KSR.pv.get("$shtitval(it)")
			end
			return n, sum, H.sht_iterator_end("it")`, vals(20, 210, 1)},
		{"empty table", `return H.sht_iterator_start("it", "t"), H.sht_iterator_next("it"), H.sht_iterator_end("it")`, vals(1, -1, 1)},
		{"unknown table", `return H.sht_iterator_start("it", "nope"), H.sht_iterator_next("it"), H.sht_iterator_end("it")`, vals(-1, -1, 1)},
		{"unknown iterator", `return H.sht_iterator_next("x"), H.sht_iterator_end("x"), H.sht_iterator_rm("x"), H.sht_iterator_sets("x","v")`, vals(-1, -1, -1, -1)},
		{"empty names", `return H.sht_iterator_start("", "t"), H.sht_iterator_next(""), H.sht_iterator_end("")`, vals(-1, -1, -1)},
		{"name too long", `return H.sht_iterator_start(string.rep("x", 32), "t"), H.sht_iterator_start(string.rep("x", 31), "t")`, vals(-1, 1)},
		{"at most four", `return H.sht_iterator_start("a","t"), H.sht_iterator_start("b","t"), H.sht_iterator_start("c","t"),
			H.sht_iterator_start("d","t"), H.sht_iterator_start("e","t"), H.sht_iterator_end("a"), H.sht_iterator_start("e","t")`, vals(1, 1, 1, 1, -1, 1, 1)},
		{"rm every item", `for i = 1, 5 do H.sht_seti("t", "k"..i, i) end
			H.sht_iterator_start("it", "t"); H.sht_iterator_next("it")
			local codes = ""
			while true do
				local r = H.sht_iterator_rm("it"); codes = codes .. r .. ","
				if r ~= 1 then break end
			end
			H.sht_iterator_end("it")
			return codes, H.sht_match_name("t","ne","")`, vals("1,1,1,1,-2,", -1)},
		{"rm before next", `H.sht_seti("t","k",1); H.sht_iterator_start("it","t"); return H.sht_iterator_rm("it")`, vals(-1)},
		{"sets seti setex", `H.sht_seti("e","k",1); H.sht_iterator_start("it","e"); H.sht_iterator_next("it")
			local a = H.sht_iterator_sets("it","long value"); local v1 = H.sht_get("e","k")
			local b = H.sht_iterator_seti("it",9); local v2 = H.sht_get("e","k")
			local c = H.sht_iterator_setex("it",100); H.sht_iterator_end("it"); advance(50)
			return a, v1, b, v2, c, H.sht_get("e","k"), KSR.pv.get("$shtitkey(it)")`, vals(1, "long value", 1, 9, 1, 9, nil)},
		{"key and value pvs", `H.sht_sets("t","k","v"); H.sht_iterator_start("it","t"); H.sht_iterator_next("it")
			local k, v = KSR.pv.get("$shtitkey(it)"), KSR.pv.get("$shtitval(it)"); H.sht_iterator_end("it"); return k, v`, vals("k", "v")},
		{"next after the end restarts", `H.sht_seti("t","k",1); H.sht_iterator_start("it","t")
			return H.sht_iterator_next("it"), H.sht_iterator_next("it"), H.sht_iterator_next("it"), H.sht_iterator_end("it")`, vals(1, -1, 1, 1)},
		{"the worker may change the slot it iterates", `H.sht_seti("t","k",1); H.sht_iterator_start("it","t"); H.sht_iterator_next("it")
			H.sht_inc("t","k"); local v = KSR.pv.get("$shtitval(it)"); KSR.pv.unset("$sht(t=>k)")
			return v, H.sht_iterator_next("it"), H.sht_iterator_end("it")`, vals(2, -1, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, testTables...)
			v := f.withAdvance(f.vm("w", ""))
			got := v.run("local H = KSR.htable\n" + c.chunk)
			if !same(got, c.want) {
				t.Errorf("got %#v, want %#v\nlog:\n%s", got, c.want, f.log)
			}
		})
	}
}

// TestIteratorHoldsSlot: while a worker's iterator is on an item, another
// worker touching that slot waits, as with Kamailio's slot lock.
func TestIteratorHoldsSlot(t *testing.T) {
	f := newFixture(t, "t=>size=1") // two slots
	a, b := f.vm("a", ""), f.vm("b", "")
	a.run(`KSR.htable.sht_seti("t","k",1); KSR.htable.sht_iterator_start("it","t"); KSR.htable.sht_iterator_next("it")`)
	done := make(chan []any)
	go func() { done <- b.run(`return KSR.htable.sht_inc("t","k")`) }()
	select {
	case <-done:
		t.Fatal("sht_inc in another worker did not wait for the iterator's slot")
	case <-time.After(20 * time.Millisecond): // a failure shows as "did not wait"; a pass never depends on it
	}
	a.run(`KSR.htable.sht_iterator_end("it")`)
	if got := <-done; !same(got, vals(2)) {
		t.Fatalf("got %v", got)
	}
}

// TestPVs checks $sht, $shtex, $shtinc and $shtdec through KSR.pv.
func TestPVs(t *testing.T) {
	cases := []struct {
		name  string
		chunk string
		want  []any
	}{
		{"get absent", `return KSR.pv.get("$sht(t=>k)"), KSR.pv.get("$sht(i=>k)"), KSR.pv.get("$sht(nope=>k)")`, vals(nil, 0, nil)},
		{"sets and seti", `KSR.pv.sets("$sht(t=>a)", "x"); KSR.pv.seti("$sht(t=>b)", 7)
			return KSR.pv.get("$sht(t=>a)"), KSR.pv.get("$sht(t=>b)"), H.sht_get("t","b")`, vals("x", 7, 7)},
		{"unset deletes", `H.sht_sets("t","k","v"); KSR.pv.unset("$sht(t=>k)"); return H.sht_get("t","k")`, vals(nil)},
		{"key with pseudo-variables", `KSR.pv.sets("$var(u)", "alice"); KSR.pv.sets("$sht(t=>user::$var(u)@x)", "v")
			return H.sht_get("t","user::alice@x"), KSR.pv.get("$sht(t=>user::$var(u)@x)")`, vals("v", "v")},
		{"null pseudo-variable prints <null>", `KSR.pv.sets("$sht(t=>$avp(none))", "v"); return H.sht_get("t","<null>")`, vals("v")},
		{"spaces around the table name", `KSR.pv.sets("$sht( t =>k)", "v"); return H.sht_get("t","k")`, vals("v")},
		{"set unknown table fails", `return KSR.pv.sets("$sht(nope=>k)", "v")`, vals(false)},
		{"shtcn and shtcv", `H.sht_sets("t","user::a","alice"); H.sht_sets("t","user::b","bob"); H.sht_seti("t","n",7); H.sht_seti("t","m",7)
			return KSR.pv.get("$shtcn(t=>~~^user)"), KSR.pv.get("$shtcn(t=>^USER)"), KSR.pv.get("$shtcn(t=>%~user::)"), KSR.pv.get("$shtcn(t=>~%::a)"),
				KSR.pv.get("$shtcn(t=>==n)"), KSR.pv.get("$shtcn(t=>**)"), KSR.pv.get("$shtcv(t=>eq7)"), KSR.pv.get("$shtcn(t=>eq7)"),
				KSR.pv.get("$shtcv(t=>~~^b)"), KSR.pv.get("$shtcv(t=>**)"), KSR.pv.get("$shtcn(t=>~~)"), KSR.pv.get("$shtcn(t=>~~()"), KSR.pv.get("$shtcn(nope=>**)")`,
			vals(2, 2, 2, 1, 1, 4, 2, 0, 1, 4, 0, 0, nil)},
		{"shtinc and shtdec", `return KSR.pv.get("$shtinc(i=>k)"), KSR.pv.get("$shtinc(i=>k)"), KSR.pv.get("$shtdec(i=>k)"), KSR.pv.get("$shtinc(t=>k)")`,
			vals(1, 2, 1, nil)},
		{"shtex", `H.sht_sets("e","k","v"); advance(3); local a = KSR.pv.get("$shtex(e=>k)")
			KSR.pv.seti("$shtex(e=>k)", 100); advance(50)
			return a, KSR.pv.get("$shtex(e=>k)"), H.sht_get("e","k"), KSR.pv.get("$shtex(t=>k)"), KSR.pv.get("$shtex(e=>absent)")`,
			vals(7, 50, "v", 0, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, testTables...)
			v := f.withAdvance(f.vm("w", ""))
			got := v.run("local H = KSR.htable\n" + c.chunk)
			if !same(got, c.want) {
				t.Errorf("got %#v, want %#v\nlog:\n%s", got, c.want, f.log)
			}
		})
	}
}
