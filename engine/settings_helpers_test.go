package engine

import (
	"errors"

	"kemi/config"
)

func asConfigError(err error, target **config.Error) bool { return errors.As(err, target) }
