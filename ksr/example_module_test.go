package ksr_test

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
)

// greeter is the module of docs/architecture.md's worked example: one
// modparam and one KSR function.
type greeter struct{ greeting string }

func newGreeter() *greeter { return &greeter{greeting: "hello"} }

func (g *greeter) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:   "greeter",
		Doc:    "greets",
		Params: []ksr.Param{{Name: "greeting", Set: g.setGreeting}},
		Exports: []ksr.Submodule{{Name: "greeter", Funcs: []ksr.Export{
			{Name: "greet", Func: g.greet, Ret: ksr.Xval, Args: []string{"name"}, Doc: "The greeting for name."},
		}}},
	}
}

func (g *greeter) setGreeting(_ *ksr.Setup, st config.Stmt) error {
	g.greeting = st.Value.String()
	return nil
}

func (g *greeter) greet(e *ksr.Env, name string) lua.LValue {
	return lua.LString(g.greeting + ", " + name)
}

func Example_module() {
	g := newGreeter()
	deps := &ksr.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	if err := deps.Provision(ksrtest.Host{D: deps}, g); err != nil { // the engine provisions loaded modules
		panic(err)
	}
	table, err := ksr.NewTable(ksr.Core(), g) // and builds the table from every module
	if err != nil {
		panic(err)
	}
	deps.Table = table
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, ksr.NewEnv(deps, "worker/0", "receivers", 0))
	L.DoString(`greeting = KSR.greeter.greet("bob")`)
	fmt.Println(L.GetGlobal("greeting"))
	// Output: hello, bob
}
