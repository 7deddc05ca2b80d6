//go:build linux

package rtimer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// fdWaiter waits on a Linux timerfd registered with Go's netpoller.
//
// Go's runtime timers are checked by the scheduler; when the process is
// idle the netpoller sleeps in epoll_wait, whose timeout is in whole
// milliseconds, so a timer fires 0 to 1 ms late and a periodic timer's
// intervals vary by up to 1 ms. A timerfd is an fd: its expiry makes
// epoll_wait return at once, within tens of microseconds of the deadline,
// and the goroutine blocks in the netpoller without holding a thread or a P
// (unlike a nanosleep syscall).
//
// When the process is busy the opposite holds: the scheduler runs its
// timers at every goroutine switch, but polls the network only when it runs
// out of goroutines (or every 10 ms). So the same deadline is also the
// Read's deadline, a runtime timer: the wait ends with whichever fires
// first. bench/rtimer-jitter.sh measures the result (docs/bench/rtimer.md).
type fdWaiter struct {
	f    *os.File
	rc   syscall.RawConn
	buf  [8]byte
	stop func() bool
}

// itimerspec is struct itimerspec of timerfd_settime(2).
type itimerspec struct {
	interval, value syscall.Timespec
}

const clockMonotonic = 1 // CLOCK_MONOTONIC, the clock of Go's monotonic readings

// newPreciseWaiter returns a timerfd waiter whose waits end when ctx is done.
func newPreciseWaiter(ctx context.Context) (waiter, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, fmt.Errorf("create timerfd: %w", errno)
	}
	f := os.NewFile(fd, "rtimer-timerfd") // non-blocking: registered with the netpoller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open timerfd: %w", err)
	}
	w := &fdWaiter{f: f, rc: rc}
	// A read deadline in the past wakes a blocked Read and fails later
	// ones at once: ctx's end reaches the waiting goroutine.
	w.stop = context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	return w, nil
}

func (w *fdWaiter) wait(ctx context.Context, deadline time.Time) (bool, error) {
	d := time.Until(deadline) // monotonic: the timerfd counts on CLOCK_MONOTONIC too
	if d <= 0 {
		return ctx.Err() == nil, nil
	}
	its := itimerspec{value: syscall.NsecToTimespec(d.Nanoseconds())}
	var errno syscall.Errno
	// Control holds the fd open for the call: no race with close.
	if err := w.rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&its)), 0, 0, 0)
	}); err != nil {
		return false, fmt.Errorf("arm timerfd: %w", err)
	}
	if errno != 0 {
		return false, fmt.Errorf("arm timerfd: %w", errno)
	}
	// The runtime's timer for the same deadline. Set before checking ctx:
	// a cancel that comes after the check moves it to the past again.
	if err := w.f.SetReadDeadline(deadline); err != nil {
		return false, fmt.Errorf("set timerfd deadline: %w", err)
	}
	if ctx.Err() != nil {
		return false, nil
	}
	_, err := w.f.Read(w.buf[:])
	if ctx.Err() != nil {
		return false, nil
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, fmt.Errorf("read timerfd: %w", err)
	}
	return true, nil
}

func (w *fdWaiter) close() {
	w.stop()
	w.f.Close()
}
