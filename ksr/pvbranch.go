package ksr

import lua "github.com/yuin/gopher-lua"

// pvBranch is $branch(name) and $(branch(name)[i]): an attribute of the
// destination set's i-th branch (0 the first appended; negative from the
// end), as pv_get_branchx: uri, dst_uri, path, q, send_socket, count,
// flags, ruid, location_ua, otcpid, instance. Null when there is no such
// branch (also $branch(count) of an empty set) or the attribute is unset.
func pvBranch(e *Env, s *pvSpec) lua.LValue {
	name, ok := e.argName(s)
	if !ok || e.Msg == nil {
		return lua.LNil
	}
	bs := e.Msg.Branches
	i := 0
	if s.hasIdx {
		i = s.idx
	}
	if i < 0 {
		i += len(bs)
	}
	if i < 0 || i >= len(bs) {
		return lua.LNil
	}
	b := &bs[i]
	str := func(v string) lua.LValue {
		if v == "" {
			return lua.LNil
		}
		return lstr(v)
	}
	switch name {
	case "dst_uri":
		return str(b.DstURI)
	case "path":
		return str(b.Path)
	case "q":
		if b.Q == QUnspecified {
			return lua.LNil
		}
		return boxInt(b.Q)
	case "send_socket":
		return lua.LNil // kemi does not force a branch's socket
	case "count":
		return boxInt(len(bs))
	case "flags":
		return boxInt(int(b.Flags))
	case "ruid":
		return str(b.Ruid)
	case "location_ua":
		return str(b.UserAgent)
	case "otcpid":
		return boxInt(0)
	case "instance":
		return str(b.Instance)
	}
	return lstr(b.URI)
}

// branchNames are the attributes $branch knows.
var branchNames = map[string]bool{"uri": true, "dst_uri": true, "path": true, "q": true, "send_socket": true,
	"count": true, "flags": true, "ruid": true, "location_ua": true, "otcpid": true, "instance": true}
