package main

import (
	"context"
	"flag"
	"fmt"
	"kemi/logging"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"kemi/engine"
	"kemi/ksr"
)

type runCommand struct{ m *Main }

func (c *runCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi run", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	file := fs.String("f", "", "configuration `file` (default: the embedded default)")
	rpcAddr := fs.String("rpc", "", "JSON-RPC listen `address` (overrides the configuration; - disables)")
	watch := fs.Bool("watch", false, "reload the scripts when a script file changes")
	grace := fs.Duration("grace", 10*time.Second, "how long a graceful stop may take")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to `file` until the engine stops")
	syslogSocket := fs.String("syslog-socket", "", "with log_stderror=no, the unix datagram `socket` to log to instead of /dev/log")
	toStderr := fs.Bool("E", false, "log to stderr even with log_stderror=no (as kamailio -E)")
	logJSON := fs.Bool("log-json", false, "log one JSON object per record (as kemi.log_format=\"json\")")
	defines := defineFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi run [-f kemi.cfg] [-rpc 127.0.0.1:5071] [-watch] [-A NAME=VALUE]\n\nRuns the engine until SIGTERM or SIGINT (graceful stop; a second signal exits at once). SIGHUP reloads the scripts.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set, read, name, err := loadSettings(*file, defines)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if os.Getenv("GOGC") == "" {
		// SIP handling makes many short-lived objects: collecting less often
		// saves a fifth of the CPU for a few megabytes more (GOGC=100 restores
		// Go's default).
		debug.SetGCPercent(400)
	}
	level := new(slog.LevelVar)
	level.Set(ksr.LevelFromDebug(set.Debug))
	lopts := logging.Options{Level: level, Syslog: !set.LogStderr && !*toStderr, Facility: set.LogFacility,
		Tag: set.LogName, SyslogAddr: *syslogSocket, JSON: set.LogJSON || *logJSON, Stderr: c.m.Stderr}
	log, logCloser, err := logging.New(lopts)
	if err != nil && lopts.Syslog {
		// No syslog daemon (a container): say so once, and log to stderr.
		fmt.Fprintf(c.m.Stderr, "kemi: log_stderror=no but %v: logging to stderr\n", err)
		lopts.Syslog = false
		log, logCloser, err = logging.New(lopts)
	}
	if err != nil {
		return err
	}
	defer logCloser.Close()
	setMemoryLimit(log, os.Getenv, os.ReadFile) // memlimit.go
	e, err := engine.New(set, engine.Options{Logger: log, Level: level, RPCListen: *rpcAddr, ReadFile: read})
	if err != nil {
		return err
	}
	// sipgo logs a few warnings per connection on the default logger (e.g. "TCP ref went
	// negative"): send them through the engine's rate-limited logger too.
	slog.SetDefault(e.Logger().With("module", "sipgo"))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := e.Start(ctx); err != nil {
		return err
	}
	log.Info("kemi started", "config", name, "version", engine.FullVersion())
	if err := sdNotify("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid())); err != nil {
		log.Warn("systemd notify failed", "error", err)
	}
	var changes <-chan struct{}
	if *watch {
		if read != nil {
			log.Warn("-watch ignored: the embedded configuration has no files to watch")
		} else if ch, stop, err := watchScripts(set.AppLua().Scripts, log); err != nil {
			log.Error("cannot watch the scripts", "error", err)
		} else {
			defer stop()
			changes = ch
		}
	}
	rl := startReloader(e, log)
	defer rl.stop()
	for {
		select {
		case <-changes:
			rl.request("a script change")
		case s := <-sigs:
			if s == syscall.SIGHUP {
				rl.request("SIGHUP")
				continue
			}
			log.Info("stopping", "signal", s.String(), "grace", grace.String())
			_ = sdNotify("STOPPING=1")
			sctx, cancel := context.WithTimeout(context.Background(), *grace)
			go func() {
				select {
				case <-sigs:
					log.Error("second signal: exiting now")
					os.Exit(1)
				case <-sctx.Done():
				}
			}()
			err := e.Stop(sctx)
			cancel()
			if err != nil {
				log.Error("stop", "error", err)
				return exitError(1)
			}
			log.Info("stopped")
			return nil
		}
	}
}

// reloader runs the reloads asked for by SIGHUP and -watch on a goroutine of
// its own, so that the signal loop never waits for one and a SIGTERM is
// always read. One reload runs at a time and at most one more is pending:
// requests made meanwhile (repeated SIGHUPs, a burst of file changes)
// coalesce into the pending one, which reads the files when it starts.
type reloader struct {
	e    *engine.Engine
	log  *slog.Logger
	req  chan string // the pending request's reason
	quit chan struct{}
	done chan struct{}
}

func startReloader(e *engine.Engine, log *slog.Logger) *reloader {
	r := &reloader{e: e, log: log, req: make(chan string, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// request asks for a reload; it never blocks.
func (r *reloader) request(why string) {
	select {
	case r.req <- why:
	default:
		r.log.Info("reload already pending", "reason", why)
	}
}

func (r *reloader) run() {
	defer close(r.done)
	for {
		select {
		case <-r.quit:
			return
		case why := <-r.req:
			// Reload logs a refusal itself (the running script stays).
			if _, err := r.e.Reload(); err == nil {
				r.log.Info("reloaded after " + why)
			}
		}
	}
}

// stop ends the goroutine once a reload in progress returns (its proof is
// bounded by the load timeout, and cancelled by the engine's stop).
func (r *reloader) stop() {
	close(r.quit)
	<-r.done
}

// watchScripts reports changes of the script files (debounced: editors
// write in several steps). It watches the directories, so a file replaced by
// rename is still seen.
func watchScripts(paths []string, log *slog.Logger) (<-chan struct{}, func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, err
	}
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			w.Close()
			return nil, nil, err
		}
		files[abs] = true
		dirs[filepath.Dir(abs)] = true
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, nil, err
		}
	}
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		var timer *time.Timer
		fire := make(chan struct{})
		for {
			select {
			case <-done:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !files[filepath.Clean(ev.Name)] || ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(200*time.Millisecond, func() {
					select {
					case fire <- struct{}{}:
					case <-done:
					}
				})
			case <-fire:
				select {
				case out <- struct{}{}:
				default:
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Error("script watcher", "error", err)
			}
		}
	}()
	return out, func() { close(done); w.Close() }, nil
}
