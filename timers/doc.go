// Package timers holds kemi's notion of time: a [Clock] with a real and a
// virtual ([Fake]) implementation, drift-free periodic schedules for rtimer
// ([Schedule], [RunSchedule], [RunSchedules]) and two sets of one-shot
// deadlines: a heap for exact deadlines, as of suspended requests
// ([Deadlines]), and a hashed timing wheel for many deadlines on a coarse
// grid, as of SIP transactions ([Wheel]).
//
// It is a leaf package: it imports the standard library only and knows
// nothing of Lua or SIP. It has no package-level state.
//
// # Time
//
// Every deadline is computed from [Clock.Now] plus a duration. With [Real]
// those times carry Go's monotonic clock reading, so wall-clock jumps (NTP
// steps, manual date changes) never move a deadline. Times built by hand
// (time.Date, time.Unix) have no monotonic reading and are compared by wall
// clock; do not mix them with times from [Real].
//
// Precision on the real clock is the runtime's: on Linux the netpoller
// sleeps in whole milliseconds, so a deadline fires 0 to 1 ms late when the
// process is idle (BenchmarkDeadlinesRealPrecision measures it), and never
// early.
//
// Timers follow the Go 1.23 time.Timer contract: after Stop or Reset returns,
// no stale value is received from C. [Real] timers are time.Timer values;
// [Fake] timers implement the same contract with a channel buffered to 1.
//
// # Periodic schedules (rtimer)
//
// Kamailio's rtimer sleeps interval after each run, so the period is
// interval + run time and the cadence drifts. A [Schedule] places tick k at
// start + k*interval exactly. When a run overruns, the ticks it covered are
// skipped and counted ([Schedule.Skipped]); they are never queued up and
// never run in parallel. The first tick is at start + interval, as in
// Kamailio.
//
// # Concurrency contract
//
//   - [Real] and its timers are safe for concurrent use.
//   - A [Fake] and its timers are safe for concurrent use. [Fake.Advance]
//     sends on the channels of the timers it fires without ever blocking and
//     without waiting for the receivers to run; it holds the clock for its
//     whole duration, so a goroutine woken by it observes the final time.
//     Tests synchronise with goroutines under test through [Fake.BlockUntil]
//     and its variants, never by sleeping.
//   - A [Schedule] belongs to the goroutine that runs it: Next, Advance and
//     CatchUp must not be called concurrently. Skipped, Ticks, Interval and
//     Start are safe to call from any goroutine (for statistics).
//   - [RunSchedule] and [RunSchedules] call their callback on the calling
//     goroutine, one call at a time: callbacks never overlap.
//   - Every method of [Deadlines] is safe for concurrent use. [Deadlines.Run]
//     calls fire on its own goroutine, in deadline order. A value is owned by
//     the Deadlines until it is popped (by PopDue or Run) or cancelled,
//     whichever happens first; the other one then reports that it lost
//     (Cancel returns false, or the value is simply not returned), so each
//     value is delivered or cancelled exactly once.
package timers
