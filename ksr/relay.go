package ksr

import (
	"errors"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/luavm"
)

// Relay is stateful and stateless forwarding as the bindings see it
// (implemented by engine, relay.go).
type Relay interface {
	// Relay forwards e.Msg's request statefully (t_relay): to dst when not
	// "", else to $du, else to the R-URI. In a failure route it adds a
	// branch to the transaction. branch runs the t_on_branch function on a
	// new branch and reports whether to keep it. It returns Kamailio's code:
	// 1 relayed, -1 error.
	Relay(e *Env, dst string, branch func(*Msg) bool) int
	// Forward forwards e.Msg's request statelessly (KSR.forward): 1 ok,
	// -1 error.
	Forward(e *Env, dst string) int
}

// TMReply is the reply a failure route runs for: the best final reply of
// the transaction's branches, received or local (408 on fr_timer, 487 for a
// branch cancelled before any reply).
type TMReply struct {
	Code    int
	Reason  string
	Res     *sip.Response // nil for a local reply
	Timeout bool          // the branch ended by fr_timer / fr_inv_timer
	Replied bool          // the branch received a reply (provisional or final)
	// Branches is how many branches the transaction created ($T_branch_idx
	// in a failure route).
	Branches int
}

// BranchRoute returns the function the relay runs for each new branch: the
// armed t_on_branch function, called nested in the running callback on L
// (route type branch, with bm bound), whose KSR.x.drop discards the
// branch. It returns nil when no branch route is armed. tm's t_relay
// passes it to Relay.Relay.
func (e *Env) BranchRoute(L *lua.LState) func(bm *Msg) bool {
	if e.Msg == nil || e.Msg.OnBranch == "" {
		return nil
	}
	fn := e.Msg.OnBranch
	return func(bm *Msg) bool {
		lf, ok := L.GetGlobal(fn).(*lua.LFunction)
		if !ok {
			e.D.Log.Error("t_on_branch: lua function not found", "function", fn)
			return true
		}
		saved := e.Msg
		e.Msg = bm
		top := L.GetTop()
		L.Push(lf)
		err := L.PCall(0, 0, nil)
		L.SetTop(top)
		e.Msg = saved
		if err != nil && !isExit(err) {
			var ae *lua.ApiError
			tb := ""
			if errors.As(err, &ae) {
				tb = ae.StackTrace
			}
			e.D.Log.Error("lua error", "function", fn, "worker", e.Name, "error", err.Error(), "traceback", tb)
		}
		return !bm.Drop
	}
}

// isExit reports whether err is KSR.x.exit's sentinel (a normal end).
func isExit(err error) bool {
	return strings.Contains(err.Error(), luavm.ExitSentinel)
}
