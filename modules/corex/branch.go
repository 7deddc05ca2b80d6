package corex

import "kemi/ksr"

// appendBranch is corex's append_branch(): the R-URI, with $du, the path
// vector and branch 0's flags, becomes a branch of the destination set,
// and those branch-0 attributes are reset (corex_append_branch). 1, or -1
// when the set is full.
func appendBranch(e *ksr.Env) int { return addBranch(e, "", "") }

// appendBranchURI is append_branch_uri(uri): uri, with $du, the path
// vector and branch 0's flags, is added as a branch; branch 0 keeps them.
func appendBranchURI(e *ksr.Env, uri string) int { return addBranch(e, uri, "") }

// appendBranchURIQ is append_branch_uri_q(uri, q): append_branch_uri with
// a q value ("0.5"); -1 for a q str2q refuses.
func appendBranchURIQ(e *ksr.Env, uri, q string) int { return addBranch(e, uri, q) }

func addBranch(e *ksr.Env, uri, qs string) int {
	m := e.Msg
	if m == nil || m.Request() == nil {
		return -1
	}
	q := ksr.QUnspecified
	if qs != "" {
		v, ok := ksr.ParseQ(qs)
		if !ok {
			e.D.Log.Error("corex: cannot parse the Q parameter", "q", qs)
			return -1
		}
		q = v
	}
	shift := uri == ""
	if shift {
		uri = m.Request().Recipient.String()
	}
	if !m.AppendBranch(ksr.Branch{URI: uri, DstURI: m.DstURI, Path: m.PathVec, Q: q, Flags: m.BFlags}) {
		e.D.Log.Error("corex: max nr of branches exceeded", "max", ksr.MaxBranches)
		return -1
	}
	if shift {
		m.BFlags, m.DstURI, m.PathVec = 0, "", ""
	}
	return 1
}
