//go:build !linux

package engine

import "context"

// newPreciseWaiter has no precise implementation here: rtimer waits on the
// engine's clock (see rtimer_linux.go).
func newPreciseWaiter(context.Context) (waiter, error) { return nil, nil }
