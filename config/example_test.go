package config_test

import (
	"fmt"

	"kemi/config"
)

func ExampleParse() {
	src := []byte(`#!KAMAILIO
#!define WITH_ASYNC
#!substdef "!MY_IP!127.0.0.1!g"

listen=udp:MY_IP:5060 advertise 192.0.2.1:5060
children=4
#!ifdef WITH_ASYNC
async_workers=2
#!endif
kemi.pre_routing_callback="ksr_pre_routing"

loadmodule "/usr/lib/x86_64-linux-gnu/kamailio/modules/app_lua.so"
modparam("app_lua", "load", "/etc/kamailio/kamailio.lua")
cfgengine "lua"
`)
	cfg, err := config.Parse("kamailio.cfg", src, config.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range cfg.Stmts {
		fmt.Printf("%s %s %s\n", st.Pos, st.Kind, st)
	}
	fmt.Println(config.ModuleName(cfg.Stmts[4].Name))

	_, err = config.Parse("kamailio.cfg", []byte("debug=2\nrequest_route {\n}\n"), config.Options{})
	fmt.Println(err)
	// Output:
	// kamailio.cfg:5 global listen="udp:127.0.0.1:5060" advertise 192.0.2.1:5060
	// kamailio.cfg:6 global children=4
	// kamailio.cfg:8 global async_workers=2
	// kamailio.cfg:10 global kemi.pre_routing_callback="ksr_pre_routing"
	// kamailio.cfg:12 loadmodule loadmodule "/usr/lib/x86_64-linux-gnu/kamailio/modules/app_lua.so"
	// kamailio.cfg:13 modparam modparam("app_lua", "load", "/etc/kamailio/kamailio.lua")
	// kamailio.cfg:14 cfgengine cfgengine "lua"
	// app_lua
	// native route blocks are not supported (request_route): kemi runs only cfgengine "lua"; move the logic to the Lua script, at kamailio.cfg:2
}

func ExampleErrorf() {
	st := config.Stmt{Kind: config.ModParam, Pos: config.Pos{File: "kamailio.cfg", Line: 12},
		Name: "mqueue", Param: "db_mode", Value: config.Value{Str: "7", Int: 7, IsInt: true}}
	err := config.Errorf(st.Pos, "modparam %s %s: must be 0..2", st.Name, st.Param)
	fmt.Println(err)
	// Output:
	// modparam mqueue db_mode: must be 0..2, at kamailio.cfg:12
}
