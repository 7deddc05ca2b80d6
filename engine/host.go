package engine

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"kemi/ksr"
	"kemi/workers"
)

// The engine is every module's ksr.Host: Logger, Clock and Deps are in
// engine.go, the rest here.
var _ ksr.Host = (*Engine)(nil)

// NewRunner makes a worker outside any group (ksr.Host): a module's own
// goroutine owns it.
func (e *Engine) NewRunner(name, group string, index int) (ksr.Runner, error) {
	return e.newWorker(name, group, index, false)
}

// NewGroup makes a module's group of n workers (ksr.Host); KSR.async's
// get_gname is the group's name in its workers.
func (e *Engine) NewGroup(name string, n int) (ksr.Group, error) {
	g, err := e.newGroup(name, name, n, 0, 0, true)
	if err != nil {
		return nil, err
	}
	tg := &taskGroup{e: e, g: g}
	e.modGroups = append(e.modGroups, tg)
	return tg, nil
}

// Group returns the async_workers group named name, or nil (ksr.Host).
func (e *Engine) Group(name string) ksr.Group {
	if g, ok := e.groups[name]; ok {
		return g
	}
	return nil
}

// Hold counts work in progress outside the groups' tasks (ksr.Host).
func (e *Engine) Hold(delta int) { e.pending.Add(int64(delta)) }

// Precise reports whether the engine runs on the real clock (ksr.Host).
func (e *Engine) Precise() bool { return e.opts.Clock == nil }

// SendUDP sends one datagram from a UDP listener (ksr.Host).
func (e *Engine) SendUDP(socket string, dst netip.AddrPort, build func(netip.AddrPort) []byte) error {
	if e.sip == nil {
		return fmt.Errorf("send to %s: no SIP network", dst)
	}
	return e.sip.SendUDP(socket, dst, build)
}

// newGroup builds a group of n workers named prefix/0.., whose Envs say
// group; inbox 0 is the workers' default. usleep pauses each worker before
// every task, as Kamailio's async workers sleep before each receive.
func (e *Engine) newGroup(prefix, group string, n, inbox int, usleep time.Duration, async bool) (*workers.Group[ksr.Task], error) {
	var g *workers.Group[ksr.Task]
	g, err := workers.NewGroup(workers.Options{Name: group, Workers: n, Inbox: inbox, OnPanic: e.onPanic},
		func(i int) (workers.Runner[ksr.Task], error) {
			w, err := e.newWorker(fmt.Sprintf("%s/%d", prefix, i), group, i, async)
			if err != nil {
				return nil, err
			}
			w.group = g // set: Start builds the runners
			if usleep > 0 {
				return pacedWorker{w, usleep}, nil
			}
			return w, nil
		})
	return g, err
}

// newTaskGroup builds one async_workers group (core async_workers /
// async_workers_group): its workers own a VM each and take tasks from one
// inbox (inbox=N, kemi's key; 0 = workers' default). usleep=N pauses each
// worker N µs before every task.
func (e *Engine) newTaskGroup(gs GroupSpec) (*taskGroup, error) {
	g, err := e.newGroup(gs.Name, gs.Name, gs.Workers, gs.Inbox, time.Duration(gs.USleep)*time.Microsecond, true)
	if err != nil {
		return nil, err
	}
	return &taskGroup{e: e, g: g, nonBlock: gs.NonBlock}, nil
}

// pacedWorker is a worker of a group with usleep set.
type pacedWorker struct {
	*worker
	pause time.Duration
}

func (p pacedWorker) Run(t ksr.Task) {
	time.Sleep(p.pause)
	p.worker.Run(t)
}

// taskGroup is a worker group as the modules see it (ksr.Group): what is
// submitted is counted in the engine's pending tasks until it has run.
type taskGroup struct {
	e        *Engine
	g        *workers.Group[ksr.Task]
	nonBlock bool
}

func (t *taskGroup) Name() string   { return t.g.Name() }
func (t *taskGroup) NonBlock() bool { return t.nonBlock }
func (t *taskGroup) Pending() int   { return t.g.Pending() }

func (t *taskGroup) Submit(task ksr.Task) error { return t.e.submit(t.g, task) }

func (t *taskGroup) TrySubmit(task ksr.Task) error {
	t.e.pending.Add(1)
	if err := t.g.TrySubmit(task); err != nil {
		t.e.pending.Add(-1)
		return err
	}
	return nil
}

func (t *taskGroup) Start(ctx context.Context) error { return t.g.Start(ctx) }
func (t *taskGroup) Stop(ctx context.Context) error  { return t.g.Stop(ctx) }
