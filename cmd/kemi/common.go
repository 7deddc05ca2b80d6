package main

import (
	"io"
	"log/slog"

	"kemi/engine"
)

// loadSettings loads file, or the embedded default when file is "". It
// returns the script reader to pass to the engine and a name for messages.
func loadSettings(file string, defines map[string]string) (*engine.Settings, func(string) ([]byte, error), string, error) {
	if file == "" {
		set, err := engine.LoadEmbedded(defines)
		return set, engine.EmbeddedReadFile, engine.EmbeddedFile, err
	}
	set, err := engine.Load(file, defines)
	return set, nil, file, err
}

// quietLogger logs warnings and errors only.
func quietLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
