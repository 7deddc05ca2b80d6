package engine

import (
	"testing"

	"kemi/ksr"
)

// TestModuleTableExports: every export of every module in the table
// validates, the merged table builds, and the names app_lua.api_list
// prints include those of the core and of each converted module.
func TestModuleTableExports(t *testing.T) {
	mods := moduleTable()
	var fns []string
	for _, m := range mods {
		info := m.Info()
		for _, s := range info.Exports {
			for i := range s.Funcs {
				x := &s.Funcs[i]
				if err := x.Validate(); err != nil {
					t.Errorf("module %q: %v", info.Name, err)
				}
				if x.Doc == "" {
					t.Errorf("%s has no Doc", s.Fn(x))
				}
				fns = append(fns, s.Fn(x))
			}
		}
		seen := map[string]bool{}
		for _, p := range info.Params {
			seen[p.Name] = true
		}
		for _, n := range info.Ignored {
			if seen[n] {
				t.Errorf("module %q: modparam %q listed twice (honoured or ignored)", info.Name, n)
			}
			seen[n] = true
		}
	}
	tbl, err := ksr.NewTable(mods...)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Len() != len(fns) {
		t.Errorf("table holds %d functions, the modules export %d", tbl.Len(), len(fns))
	}
	have := map[string]bool{}
	for _, f := range fns {
		have[f] = true
	}
	for _, want := range []string{
		"KSR.is_INVITE", "KSR.info", "KSR.setflag", "KSR.forward",
		"KSR.x.exit", "KSR.x.drop", "KSR.pv.get", "KSR.pv.sets", "KSR.hdr.get", "KSR.hdr.append",
		"KSR.sl.send_reply", "KSR.sl.sl_send_reply", "KSR.tm.t_relay", "KSR.tm.t_reply",
		"KSR.rr.record_route", "KSR.rr.loose_route", "KSR.mqueue.mq_add",
	} {
		if !have[want] {
			t.Errorf("%s is not in the export table", want)
		}
	}
	names := map[string]bool{}
	for _, a := range tbl.API() {
		n := a.Name
		if a.Module != "" {
			n = a.Module + "." + a.Name
		}
		if names[n] {
			t.Errorf("api_list name %q twice", n)
		}
		names[n] = true
	}
	for _, want := range []string{"is_INVITE", "x.exit", "pv.get", "sl.send_reply", "tm.t_relay", "rr.loose_route"} {
		if !names[want] {
			t.Errorf("api_list lacks %s", want)
		}
	}
	for _, sub := range []string{"", "x", "pv", "hdr", "sl", "tm", "rr", "mqueue"} {
		if !tbl.HasSubmodule(sub) {
			t.Errorf("KSR.%s is not a submodule of the table", sub)
		}
	}
	if o := tbl.Owner("tm"); o != "tm" {
		t.Errorf("KSR.tm owned by %q", o)
	}
}
