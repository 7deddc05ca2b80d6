package engine_test

import (
	"errors"
	"strings"
	"testing"

	"kemi/config"
	"kemi/engine"
	"kemi/queues"
)

// mqueueSettings parses a configuration made of the mqueue lines after the
// module loads (line 3 is the first of lines).
func mqueueSettings(lines ...string) (*engine.Settings, error) {
	src := "loadmodule \"mqueue.so\"\nloadmodule \"app_lua.so\"\n" + strings.Join(lines, "\n") +
		"\nmodparam(\"app_lua\", \"load\", \"script.lua\")\n"
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		return nil, err
	}
	return engine.FromConfig(c, "kemi.cfg")
}

// TestMqueueSettingsErrors: every bad mqueue parameter is a configuration
// error naming the parameter and the file:line of the statement at fault.
// Kamailio is laxer (a malformed number silently becomes 0); kemi refuses it.
func TestMqueueSettingsErrors(t *testing.T) {
	const def = `modparam("mqueue", "mqueue", "name=q")`
	cases := []struct {
		name  string
		lines []string
		want  string // the whole message
		line  int
	}{
		{"unknown attribute", []string{`modparam("mqueue", "mqueue", "name=q;foo=1")`},
			`modparam mqueue mqueue "name=q;foo=1": unknown key "foo" (value "1"), at kemi.cfg:3`, 3},
		{"size not a number", []string{`modparam("mqueue", "mqueue", "name=q;size=abc")`},
			`modparam mqueue mqueue "name=q;size=abc": size "abc": not a number, at kemi.cfg:3`, 3},
		{"size out of range", []string{`modparam("mqueue", "mqueue", "name=q;size=99999999999999999999")`},
			`modparam mqueue mqueue "name=q;size=99999999999999999999": size "99999999999999999999": out of range, at kemi.cfg:3`, 3},
		{"dbmode out of range", []string{`modparam("mqueue", "db_url", "/tmp/x.db")`, `modparam("mqueue", "mqueue", "name=q;dbmode=5")`},
			`modparam mqueue mqueue "name=q;dbmode=5": dbmode 5: must be 0..4, at kemi.cfg:4`, 4},
		{"addmode out of range", []string{`modparam("mqueue", "mqueue", "name=q;addmode=3")`},
			`modparam mqueue mqueue "name=q;addmode=3": addmode 3: must be 0..2, at kemi.cfg:3`, 3},
		{"no name", []string{`modparam("mqueue", "mqueue", "size=10")`},
			`modparam mqueue mqueue "size=10": name is missing, at kemi.cfg:3`, 3},
		{"key twice", []string{`modparam("mqueue", "mqueue", "name=q;Name=r")`},
			`modparam mqueue mqueue "name=q;Name=r": name "r": key given twice, at kemi.cfg:3`, 3},
		{"no equals", []string{`modparam("mqueue", "mqueue", "name=q;size")`},
			`modparam mqueue mqueue "name=q;size": attribute "size": missing '=', at kemi.cfg:3`, 3},
		{"empty attribute", []string{`modparam("mqueue", "mqueue", "name=q;;size=1")`},
			`modparam mqueue mqueue "name=q;;size=1": empty attribute in "name=q;;size=1", at kemi.cfg:3`, 3},
		{"duplicate name", []string{def, `modparam("mqueue", "mqueue", "name=p")`, `modparam("mqueue", "mqueue", "name=q;size=2")`},
			`modparam mqueue mqueue: duplicate queue name "q" (first defined at kemi.cfg:3), at kemi.cfg:5`, 5},
		{"duplicate name by mqueue_name", []string{def, `modparam("mqueue", "mqueue_name", "q")`},
			`modparam mqueue mqueue_name: duplicate queue name "q" (first defined at kemi.cfg:3), at kemi.cfg:4`, 4},
		{"dbmode without db_url", []string{def, `modparam("mqueue", "mqueue", "name=p;dbmode=1")`},
			`modparam mqueue mqueue: queue "p" has dbmode 1 but modparam("mqueue", "db_url", ...) is not set, at kemi.cfg:4`, 4},
		{"dbmode with an empty db_url", []string{`modparam("mqueue", "db_url", "")`, `modparam("mqueue", "mqueue", "name=p;dbmode=4")`},
			`modparam mqueue mqueue: queue "p" has dbmode 4 but modparam("mqueue", "db_url", ...) is not set, at kemi.cfg:4`, 4},
		{"db_url not sqlite", []string{`modparam("mqueue", "db_url", "mysql://kamailio:secret@localhost/kamailio")`},
			`modparam mqueue db_url: unsupported scheme "mysql": kemi stores queues in SQLite ("sqlite:///path/file.db" or a plain path) or NATS JetStream ("nats://host:port"), at kemi.cfg:3`, 3},
		{"mqueue_name empty", []string{`modparam("mqueue", "mqueue_name", "")`},
			`modparam mqueue mqueue_name: empty name, at kemi.cfg:3`, 3},
		{"mqueue_size not a number", []string{`modparam("mqueue", "mqueue_size", "abc")`},
			`modparam mqueue mqueue_size: expected an integer, got "abc", at kemi.cfg:3`, 3},
		{"mqueue_addmode out of range", []string{`modparam("mqueue", "mqueue_addmode", 3)`},
			`modparam mqueue mqueue_addmode: must be 0..2, got 3, at kemi.cfg:3`, 3},
		{"unknown parameter", []string{`modparam("mqueue", "queue", "name=q")`},
			`modparam("mqueue", "queue"): unknown parameter (mqueue has: mqueue, mqueue_name, mqueue_size, mqueue_addmode, db_url, nats_replicas, nats_ack_wait, nats_timeout, nats_start_wait), at kemi.cfg:3`, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := mqueueSettings(c.lines...)
			if err == nil {
				t.Fatalf("no error; queues %+v", s.Mqueue().Queues)
			}
			if err.Error() != c.want {
				t.Fatalf("error\n got %s\nwant %s", err, c.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Pos.File != "kemi.cfg" || ce.Pos.Line != c.line {
				t.Fatalf("error %v is not a config error at kemi.cfg:%d", err, c.line)
			}
		})
	}
}

// TestMqueueModparamBeforeLoadmodule: as in Kamailio, modparam needs its
// module loaded first.
func TestMqueueModparamBeforeLoadmodule(t *testing.T) {
	src := "modparam(\"mqueue\", \"mqueue\", \"name=q\")\nloadmodule \"mqueue.so\"\nloadmodule \"app_lua.so\"\n" +
		"modparam(\"app_lua\", \"load\", \"script.lua\")\n"
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.FromConfig(c, "kemi.cfg")
	want := `modparam("mqueue", "mqueue"): module "mqueue" is not loaded (loadmodule must come before its modparam), at kemi.cfg:1`
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got %v\nwant %s", err, want)
	}
}

// TestMqueueSettings: the accepted forms. mqueue_name takes the size and
// addmode set earlier by mqueue_size/mqueue_addmode, as Kamailio does;
// db_url may come after the queues (Kamailio 5.6 needs it before them,
// because it loads the table while parsing the mqueue modparam).
func TestMqueueSettings(t *testing.T) {
	s, err := mqueueSettings(
		`modparam("mqueue", "mqueue", "name=a;size=10;dbmode=1")`,
		`modparam("mqueue", "mqueue_name", "b0")`,
		`modparam("mqueue", "mqueue_size", 5)`,
		`modparam("mqueue", "mqueue_addmode", 2)`,
		`modparam("mqueue", "mqueue_name", "b")`,
		`modparam("mqueue", "mqueue", " NAME = c ; AddMode=1; DBMODE=3 ;")`,
		`modparam("mqueue", "mqueue", "name=C;size=-1;dbmode=2")`,
		`modparam("mqueue", "mqueue_size", "7")`,
		`modparam("mqueue", "mqueue_name", "d")`,
		`modparam("mqueue", "mqueue", "name=e;dbmode=4")`,
		`modparam("mqueue", "db_url", "sqlite:///var/lib/kemi/q.db")`,
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []queues.Options{
		{Name: "a", Size: 10, DBMode: 1},
		{Name: "b0"},
		{Name: "b", Size: 5, AddMode: 2},
		{Name: "c", AddMode: 1, DBMode: 3},
		{Name: "C", Size: -1, DBMode: 2},
		{Name: "d", Size: 7, AddMode: 2},
		{Name: "e", DBMode: 4},
	}
	got := s.Mqueue().Queues
	if len(got) != len(want) {
		t.Fatalf("queues %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("queue %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if s.Mqueue().DBURL != "sqlite:///var/lib/kemi/q.db" {
		t.Errorf("db_url %q", s.Mqueue().DBURL)
	}
	if p := s.Mqueue().Pos["c"]; p.File != "kemi.cfg" || p.Line != 8 {
		t.Errorf("position of queue c: %v, want kemi.cfg:8", p)
	}
	if _, err := mqueueSettings(`modparam("mqueue", "db_url", "/plain/path.db")`, `modparam("mqueue", "mqueue", "name=q;dbmode=1")`); err != nil {
		t.Errorf("plain db_url path: %v", err)
	}
}
