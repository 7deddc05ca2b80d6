// Package applua is Kamailio's app_lua module in kemi: the scripts to load
// (load, with a relative path resolved against the configuration file when
// the script is there), hot reload (reload, on by default) and kemi's bounds
// on the scripts (max_exec_ms, load_timeout_ms, max_mem_mb). KSR.x, which
// app_lua defines in Lua, is kemi's core's (ksr/x.go); the engine compiles,
// proves and runs the scripts (luavm).
//
// Concurrency: a Module is configured by one goroutine; its settings are
// read-only afterwards.
package applua

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"kemi/config"
	"kemi/ksr"
)

// Settings are app_lua's parameters.
type Settings struct {
	Scripts     []string      // load, in load order
	Reload      bool          // reload (default on)
	MaxExec     time.Duration // max_exec_ms: a time budget per event; 0 = none
	LoadTimeout time.Duration // load_timeout_ms: bound on the scripts' top level; 0 = the engine's default
	MaxMem      int64         // max_mem_mb, in bytes: the heap watchdog's budget per event; 0 = off
}

// Module is one configuration's app_lua.
type Module struct{ set Settings }

var _ ksr.Finisher = (*Module)(nil)

// New returns app_lua with reload on.
func New() *Module { return &Module{set: Settings{Reload: true}} }

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "app_lua",
		Doc:  "the Lua scripts (KSR.x is the core's): load, hot reload, time and memory bounds",
		Params: []ksr.Param{
			{Name: "load", Set: m.paramLoad},
			{Name: "reload", Set: m.paramReload},
			{Name: "max_exec_ms", Set: m.paramMaxExec},
			{Name: "load_timeout_ms", Set: m.paramLoadTimeout},
			{Name: "max_mem_mb", Set: m.paramMaxMem},
		},
		Ignored:     []string{"log_mode"},
		RuntimeFree: true, // the engine runs the scripts
	}
}

func (m *Module) paramLoad(c *ksr.Setup, st config.Stmt) error {
	path := st.Value.String()
	if path == "" {
		return config.Errorf(st.Pos, "modparam app_lua load: empty script path")
	}
	if !filepath.IsAbs(path) && c.File != "" {
		// Relative to the config file when it is there (a project directory
		// can move), else relative to the working directory as Kamailio
		// resolves it.
		if p := filepath.Join(filepath.Dir(c.File), path); fileExists(p) {
			path = p
		}
	}
	m.set.Scripts = append(m.set.Scripts, path)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (m *Module) paramReload(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "app_lua", 0, 1)
	m.set.Reload = n == 1
	return err
}

func (m *Module) paramMaxExec(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "app_lua", 0, 3600_000)
	m.set.MaxExec = time.Duration(n) * time.Millisecond
	return err
}

func (m *Module) paramLoadTimeout(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "app_lua", 1, 3600_000)
	m.set.LoadTimeout = time.Duration(n) * time.Millisecond
	return err
}

func (m *Module) paramMaxMem(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "app_lua", 0, 1<<20)
	m.set.MaxMem = int64(n) << 20
	return err
}

// Finish refuses a configuration without a script: kemi runs nothing else.
func (m *Module) Finish(c *ksr.Setup) error {
	if len(m.set.Scripts) == 0 {
		return &config.Error{Pos: config.Pos{File: c.File}, Err: errors.New("no Lua script: add loadmodule \"app_lua.so\" and modparam(\"app_lua\", \"load\", \"/path/script.lua\")")}
	}
	return nil
}
