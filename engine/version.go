package engine

import (
	"runtime/debug"
)

// buildVersion is set at build time:
//
//	go build -ldflags "-X kemi/engine.buildVersion=1.2.3" ./cmd/kemi
//
// It is the one package variable the linker needs; nothing writes it at
// run time.
var buildVersion string

// FullVersion is the version kemi reports (core.version, kemi version):
// the -ldflags one, else what the Go toolchain stamped into the binary
// (the module version, or the VCS revision with "+dirty" for a modified
// tree), else Version.
func FullVersion() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return Version + "-" + rev + dirty
	}
	return Version
}

// buildID is the VCS revision the binary was built from, "" if unknown.
func buildID() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
