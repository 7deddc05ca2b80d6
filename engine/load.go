package engine

import (
	"io/fs"

	"kemi/config"
	"kemi/scripts"
)

// EmbeddedFile is the name the embedded default configuration reports in
// messages.
const EmbeddedFile = "embedded:" + scripts.DefaultConfig

// Load reads a configuration file (with the KEMI define set, so a shared
// kamailio.cfg can hold `#!ifdef KEMI` sections) and turns it into Settings.
func Load(path string, defines map[string]string) (*Settings, error) {
	c, err := config.ParseFile(path, config.Options{Defines: withKEMI(defines)})
	if err != nil {
		return nil, err
	}
	return FromConfig(c, path)
}

// LoadEmbedded loads the embedded default configuration; its scripts are
// read with EmbeddedReadFile.
func LoadEmbedded(defines map[string]string) (*Settings, error) {
	src, err := fs.ReadFile(scripts.Default, scripts.DefaultConfig)
	if err != nil {
		return nil, err
	}
	c, err := config.Parse(EmbeddedFile, src, config.Options{Defines: withKEMI(defines), ReadFile: EmbeddedReadFile})
	if err != nil {
		return nil, err
	}
	return FromConfig(c, "")
}

// EmbeddedReadFile reads the embedded default files.
func EmbeddedReadFile(name string) ([]byte, error) { return fs.ReadFile(scripts.Default, name) }

func withKEMI(defines map[string]string) map[string]string {
	out := map[string]string{"KEMI": ""}
	for k, v := range defines {
		out[k] = v
	}
	return out
}
