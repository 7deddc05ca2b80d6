// Package runtimefree holds the Kamailio modules that kemi accepts with
// nothing of their own to run: their work is done by kemi's core, is not needed in a Go process (kex's process
// statistics, db_sqlite's driver, which mqueue opens itself), or has no
// KSR functions (cfg_rpc). A configuration may load them and set the
// parameters Kamailio 5.6 knows for them (each is ignored with a notice);
// an unknown parameter is refused with its file:line, as Kamailio refuses
// it.
//
// The parameter lists are the param_export_t arrays of Kamailio 5.6.3.
// A module moves out of here into a home of its own once kemi runs
// something for it.
package runtimefree

import "kemi/ksr"

// module is a runtime-free module: a name, a line of doc, the parameters
// Kamailio knows.
type module struct {
	name, doc string
	params    []string
}

func (m module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{Name: m.name, Doc: m.doc, Ignored: m.params, RuntimeFree: true}
}

// Modules returns the runtime-free modules, in the order they are listed
// in the engine's module table.
func Modules() []ksr.Module {
	return []ksr.Module{
		module{"kex", "Kamailio core extensions: kemi's core has what scripts use of it", nil},
		module{"cfg_rpc", "run-time configuration over RPC: kemi serves cfg.set_now_int itself", nil},
		module{"db_sqlite", "SQLite driver: kemi opens SQLite databases itself (mqueue db_url)", []string{
			"db_set_readonly", "db_set_journal_mode"}},
		module{"db_postgres", "PostgreSQL driver: kemi opens postgres:// databases itself through gorm (kdb: usrloc, auth_db)", []string{
			"retries", "lockset", "timeout", "tcp_keepalive", "bytea_output_escape", "con_param"}},
	}
}
