// Package scripts holds kemi's example configurations and Lua scripts, and
// embeds the default pair that `kemi run` starts without -f.
package scripts

import "embed"

// Default holds default.cfg and default.lua.
//
//go:embed default.cfg default.lua
var Default embed.FS

// DefaultConfig is the name of the embedded default configuration in Default.
const DefaultConfig = "default.cfg"
