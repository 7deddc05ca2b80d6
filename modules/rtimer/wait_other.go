//go:build !linux

package rtimer

import "context"

// newPreciseWaiter has no precise implementation here: rtimer waits on the
// engine's clock (see wait_linux.go).
func newPreciseWaiter(context.Context) (waiter, error) { return nil, nil }
