package engine

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"kemi/config"
	"kemi/modules/async"
	"kemi/queues"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/cfg/*.cfgtest")

// settingsView is the golden form of Settings.
type settingsView struct {
	Listen      []string          `json:"listen"`
	Children    int               `json:"children"`
	TCPChildren int               `json:"tcp_children,omitempty"`
	Debug       int               `json:"debug"`
	Scripts     []string          `json:"scripts"`
	Callbacks   map[string]string `json:"callbacks"`
	MaxExecMS   int64             `json:"max_exec_ms,omitempty"`
	RPCListen   string            `json:"rpc_listen"`
	Groups      []string          `json:"async_groups,omitempty"`
	Modules     []string          `json:"modules"`
	Queues      []queues.Options  `json:"queues,omitempty"`
	DBURL       string            `json:"db_url,omitempty"`
	Timers      []string          `json:"timers,omitempty"`
	Async       async.Settings    `json:"async"`
	XData       string            `json:"sworker_xdata,omitempty"`
	Aliases     []string          `json:"aliases,omitempty"`
	Notices     []string          `json:"notices,omitempty"`
}

func view(s *Settings) settingsView {
	v := settingsView{
		Children: s.Children, TCPChildren: s.TCPChildren, Debug: s.Debug, Scripts: s.AppLua().Scripts,
		Callbacks: map[string]string{"request": s.RequestCB, "reply": s.ReplyCB, "pre_routing": s.PreRouteCB},
		MaxExecMS: s.AppLua().MaxExec.Milliseconds(), Queues: s.Mqueue().Queues,
		DBURL: s.Mqueue().DBURL, Async: *s.Async(), XData: s.Sworker().XData, Aliases: s.Aliases, Notices: s.Notices,
	}
	v.RPCListen, _ = s.rpcListen()
	for _, l := range s.Listen {
		v.Listen = append(v.Listen, l.String())
	}
	for _, g := range s.AsyncGroups {
		v.Groups = append(v.Groups, fmt.Sprintf("%s workers=%d nonblock=%v usleep=%d", g.Name, g.Workers, g.NonBlock, g.USleep))
	}
	for m := range s.Modules {
		v.Modules = append(v.Modules, m)
	}
	sort.Strings(v.Modules)
	for _, t := range s.Rtimer().Timers {
		v.Timers = append(v.Timers, fmt.Sprintf("%s mode=%d interval=%s execs=%s", t.Name, t.Mode, t.Interval, strings.Join(t.Execs, ",")))
	}
	return v
}

// TestSettingsGolden runs testdata/cfg/*.cfgtest: a configuration, a line
// "----", then the expected settings as JSON or "error: <message>".
func TestSettingsGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/cfg/*.cfgtest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".cfgtest"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src, want, ok := strings.Cut(string(data), "\n----\n")
			if !ok {
				t.Fatal("no ---- separator")
			}
			got := goldenOutput(src)
			if *update {
				os.WriteFile(f, []byte(src+"\n----\n"+got), 0o644)
				return
			}
			if strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func goldenOutput(src string) string {
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{Defines: map[string]string{"KEMI": ""}})
	if err == nil {
		var s *Settings
		if s, err = FromConfig(c, "kemi.cfg"); err == nil {
			b, _ := json.MarshalIndent(view(s), "", "  ")
			return string(b) + "\n"
		}
	}
	return "error: " + err.Error() + "\n"
}

func FuzzSettings(f *testing.F) {
	files, _ := filepath.Glob("testdata/cfg/*.cfgtest")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		src, _, _ := strings.Cut(string(data), "\n----\n")
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
		if err != nil {
			return
		}
		s, err := FromConfig(c, "kemi.cfg")
		if err != nil {
			var ce *config.Error
			if !asConfigError(err, &ce) {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		if s.Children <= 0 || len(s.AppLua().Scripts) == 0 || len(s.Listen) == 0 {
			t.Fatalf("accepted settings are incomplete: %+v", s)
		}
	})
}
