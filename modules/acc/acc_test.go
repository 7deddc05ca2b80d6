package acc

import (
	"strings"
	"testing"

	"kemi/config"
	"kemi/ksr"
)

func TestParseExtra(t *testing.T) {
	x, err := parseExtra("src_user=$fU; src_ip = $si;dst_user=$rU")
	if err != nil || len(x) != 3 || x[1] != (extra{"src_ip", "$si"}) {
		t.Fatalf("%+v %v", x, err)
	}
	for _, bad := range []string{"", "a=$fU;", "a", "a=fU", "=$fU", "a b=$fU"} {
		if _, err := parseExtra(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestComment(t *testing.T) {
	for in, want := range map[string]string{
		"200 OK": "200|OK", "404  Not here": "404|Not here", "123": "123|", "99 x": "|99 x", "reason": "|reason",
		"": "!", "404 $ru": "!",
	} {
		c, r, ok := comment(in)
		got := c + "|" + r
		if !ok {
			got = "!"
		}
		if got != want {
			t.Errorf("comment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for code, want := range map[int]string{408: "Request Timeout", 487: "Request Terminated", 499: "Request Failure",
		500: "Server Internal Error", 699: "Global Failure", 42: "Unspecified"} {
		if got := errorText(code); got != want {
			t.Errorf("%d: %q", code, got)
		}
	}
}

// TestSettings reads the parameters as Kamailio's example sets them, and
// refuses bad ones with file:line.
func TestSettings(t *testing.T) {
	m := New()
	var notices []string
	s := ksr.NewSetup("k.cfg", &notices)
	set := func(name, v string) error {
		for _, p := range m.Info().Params {
			if p.Name == name {
				st := config.Stmt{Kind: config.ModParam, Pos: config.Pos{File: "k.cfg", Line: 7}, Name: name, Value: config.Value{Str: v}}
				return p.Set(s, st)
			}
		}
		t.Fatalf("no parameter %s", name)
		return nil
	}
	for _, kv := range [][2]string{{"log_flag", "1"}, {"log_missed_flag", "2"}, {"failed_transaction_flag", "3"},
		{"early_media", "0"}, {"db_extra", "src_user=$fU;dst_user=$rU"}, {"failed_filter", "404, 486"}, {"log_level", "2"}} {
		if err := set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if m.set.LogFlag != 1 || m.set.FailedFlag != 3 || len(m.set.DBExtra) != 2 || len(m.set.FailedFilter) != 2 || m.set.LogLevel != ksr.LevelInfo {
		t.Fatalf("%+v", m.set)
	}
	if len(notices) != 0 {
		t.Errorf("notices %v", notices)
	}
	if err := set("report_ack", "1"); err != nil || len(notices) != 1 {
		t.Errorf("report_ack 1: %v %v", err, notices)
	}
	for _, bad := range [][2]string{{"log_flag", "32"}, {"db_flag", "x"}, {"log_extra", "a=b"}, {"failed_filter", "20"}} {
		if err := set(bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "k.cfg:7") {
			t.Errorf("%s=%s: %v", bad[0], bad[1], err)
		}
	}
	// failed_filter drops those codes from failed-transaction accounting.
	if m.shouldAcc(1<<3, 486) || !m.shouldAcc(1<<3, 487) || m.shouldAcc(0, 487) || !m.shouldAcc(1<<1, 200) {
		t.Error("shouldAcc")
	}
}
