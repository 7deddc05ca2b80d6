package sipnet

import "time"

// timer is what sipnet keeps of a one-shot timer armed with
// Server.afterFunc: a *time.Timer, or a test's stub.
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// afterFuncHook is time.AfterFunc as a test of the package replaces it.
type afterFuncHook func(d time.Duration, f func()) timer

// afterFunc arms the timers of branches (retransmission, fr_timer,
// lingering) and of answered non-INVITE transactions (tm's wait timer): f
// runs on its own goroutine after d, as with time.AfterFunc. A test of the
// package replaces it with Server.timerHook to fire timers itself.
func (s *Server) afterFunc(d time.Duration, f func()) timer {
	if s.timerHook != nil {
		return s.timerHook(d, f)
	}
	return time.AfterFunc(d, f)
}
