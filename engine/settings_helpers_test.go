package engine

import (
	"errors"
	"io"
	"log/slog"

	"kemi/config"
)

func asConfigError(err error, target **config.Error) bool { return errors.As(err, target) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
