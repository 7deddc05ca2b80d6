// Package workers runs groups of goroutines, each owning one state value
// (in kemi, a Lua VM) for its whole life, fed by a bounded inbox: Kamailio's
// process groups (SIP receivers, async workers, sworker groups) as
// goroutines.
//
// Concurrency contract: Submit, TrySubmit and SubmitTo are safe for
// concurrent use, before and during Stop; after Stop they return ErrStopped.
// Each task is run exactly once, by one worker, on that worker's goroutine,
// with that worker's Runner; a task given to SubmitTo(i) runs on worker i,
// before the tasks waiting in the shared inbox. A Group is generic over its
// task type T: the caller decides what a task is (in kemi, ksr.Task, a value
// with a Run method), so no task is checked at run time. Stop lets the workers finish
// every accepted task, then closes the runners. The package knows nothing of
// Lua or SIP.
package workers
