// Package maxfwd is Kamailio's maxfwd module in kemi: the Max-Forwards
// checks a proxy script makes before relaying (KSR.maxfwd.process_maxfwd
// and is_maxfwd_lt), with the max_limit parameter. Return codes follow
// maxfwd.c at 5.6.3.
//
// The script owns Max-Forwards, as in Kamailio: kemi's t_relay and forward
// leave the header as it is (see docs/relay.md).
//
// Concurrency: the module is configured once; its exports only read its
// settings and change the message of the VM that calls them.
package maxfwd

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/config"
	"kemi/ksr"
)

// Module is one configuration's maxfwd.
type Module struct {
	maxLimit int // max_limit: a larger received value is lowered to it
}

// New returns maxfwd with Kamailio's default max_limit, 70.
func New() *Module { return &Module{maxLimit: 70} }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:   "maxfwd",
		Doc:    "Max-Forwards processing",
		Params: []ksr.Param{{Name: "max_limit", Set: m.setMaxLimit}},
		Exports: []ksr.Submodule{{Name: "maxfwd", Funcs: []ksr.Export{
			{Name: "process_maxfwd", NoRetain: true, Func: m.process, Ret: ksr.Int, Args: []string{"limit"},
				Doc: "Decrement Max-Forwards (lowered to max_limit), or add it with limit: 1 decremented, 2 added, -1 it was 0 or limit is out of 0..255, -2 unparsable."},
			{Name: "is_maxfwd_lt", Func: m.isLess, Ret: ksr.Int, Args: []string{"limit"},
				Doc: "1 if Max-Forwards is below limit, -1 if not (or limit is out of 0..255), -2 no header, -3 unparsable."},
		}}},
	}
}

func (m *Module) setMaxLimit(_ *ksr.Setup, st config.Stmt) (err error) {
	m.maxLimit, err = config.IntParam(st, "maxfwd", 0, 255)
	return err
}

const (
	absent = -1 // is_maxfwd_present: no header
	bad    = -2 // is_maxfwd_present: unparsable
)

// present is is_maxfwd_present: the header's value, absent or bad.
func present(r *sip.Request) (int, sip.Header) {
	h := r.GetHeader("Max-Forwards")
	if h == nil {
		return absent, nil
	}
	n, ok := str2s(strings.TrimSpace(h.Value()))
	if !ok {
		return bad, h
	}
	return n, h
}

// str2s is Kamailio's str2s: up to five decimal digits, wrapping into an
// unsigned short as the C code does; "" is 0.
func str2s(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || i >= 5 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n & 0xffff, true
}

// process is process_maxfwd_header: 2 the header was added with limit, 1
// it was decremented (after lowering it to max_limit), -1 it was 0 or
// limit is not in 0..255, -2 it cannot be parsed (or there is no request).
func (m *Module) process(e *ksr.Env, limit int) int {
	if limit < 0 || limit > 255 {
		e.D.Log.Error("maxfwd: invalid param value", "limit", limit)
		return -1
	}
	r := e.Msg.Request()
	if r == nil {
		return -2
	}
	val, _ := present(r)
	switch {
	case val == absent:
		// Kamailio inserts the header before the first one.
		mf := sip.MaxForwardsHeader(limit)
		r.PrependHeader(&mf)
		return 2
	case val == bad:
		e.D.Log.Error("maxfwd: unable to parse the max forwards number")
		return -2
	case val == 0:
		return -1
	case val > m.maxLimit:
		val = m.maxLimit + 1
	}
	mf := sip.MaxForwardsHeader(val - 1)
	r.ReplaceHeader(&mf) // a new value: clones of the request share the old one
	return 1
}

// isLess is is_maxfwd_lt.
func (m *Module) isLess(e *ksr.Env, limit int) int {
	if limit < 0 || limit > 255 {
		e.D.Log.Error("maxfwd: invalid param value", "limit", limit)
		return -1
	}
	r := e.Msg.Request()
	if r == nil {
		return bad - 1
	}
	val, _ := present(r)
	switch {
	case val < 0:
		return val - 1
	case val >= limit:
		return -1
	}
	return 1
}
