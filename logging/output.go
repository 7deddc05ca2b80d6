package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"strings"
	"sync"
)

// Options choose where and how kemi logs (kamailio.cfg's log_stderror,
// log_facility, log_name; log_engine_type=json or kemi.log_format=json).
type Options struct {
	// Level filters records (debug=; the cfg.set_now_int RPC changes it).
	Level slog.Leveler
	// Syslog sends the records to syslog (log_stderror=no) instead of
	// Stderr.
	Syslog bool
	// Facility is log_facility ("LOG_LOCAL0", "LOG_DAEMON" ...); "" is
	// LOG_DAEMON, Kamailio's default.
	Facility string
	// Tag is log_name, the program name syslog shows; "" is "kemi".
	Tag string
	// SyslogAddr is the unix datagram socket to send to; "" is the
	// system's (/dev/log). Tests stand a socket of their own in for it.
	SyslogAddr string
	// JSON writes one JSON object per record instead of key=value text.
	JSON bool
	// Stderr receives the records when Syslog is false.
	Stderr io.Writer
}

// facilities are syslog's facility names, as Kamailio's log_facility
// takes them.
var facilities = map[string]syslog.Priority{
	"LOG_KERN": syslog.LOG_KERN, "LOG_USER": syslog.LOG_USER, "LOG_MAIL": syslog.LOG_MAIL,
	"LOG_DAEMON": syslog.LOG_DAEMON, "LOG_AUTH": syslog.LOG_AUTH, "LOG_SYSLOG": syslog.LOG_SYSLOG,
	"LOG_LPR": syslog.LOG_LPR, "LOG_NEWS": syslog.LOG_NEWS, "LOG_UUCP": syslog.LOG_UUCP,
	"LOG_CRON": syslog.LOG_CRON, "LOG_AUTHPRIV": syslog.LOG_AUTHPRIV, "LOG_FTP": syslog.LOG_FTP,
	"LOG_LOCAL0": syslog.LOG_LOCAL0, "LOG_LOCAL1": syslog.LOG_LOCAL1, "LOG_LOCAL2": syslog.LOG_LOCAL2,
	"LOG_LOCAL3": syslog.LOG_LOCAL3, "LOG_LOCAL4": syslog.LOG_LOCAL4, "LOG_LOCAL5": syslog.LOG_LOCAL5,
	"LOG_LOCAL6": syslog.LOG_LOCAL6, "LOG_LOCAL7": syslog.LOG_LOCAL7,
}

// Facility parses a log_facility name ("LOG_LOCAL0", also without the
// LOG_ prefix, any case).
func Facility(name string) (syslog.Priority, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "LOG_") {
		n = "LOG_" + n
	}
	f, ok := facilities[n]
	if !ok {
		return 0, fmt.Errorf("log facility %q: unknown (LOG_DAEMON, LOG_LOCAL0..LOG_LOCAL7 ...)", name)
	}
	return f, nil
}

// New builds the logger opts describe. The closer closes the syslog
// connection (a no-op for stderr).
func New(opts Options) (*slog.Logger, io.Closer, error) {
	hopts := &slog.HandlerOptions{Level: opts.Level}
	if !opts.Syslog {
		w := opts.Stderr
		if opts.JSON {
			return slog.New(slog.NewJSONHandler(w, hopts)), nopCloser{}, nil
		}
		return slog.New(slog.NewTextHandler(w, hopts)), nopCloser{}, nil
	}
	fac := syslog.LOG_DAEMON
	if opts.Facility != "" {
		var err error
		if fac, err = Facility(opts.Facility); err != nil {
			return nil, nil, err
		}
	}
	tag := opts.Tag
	if tag == "" {
		tag = "kemi"
	}
	network := ""
	if opts.SyslogAddr != "" {
		network = "unixgram"
	}
	sw, err := syslog.Dial(network, opts.SyslogAddr, fac|syslog.LOG_INFO, tag)
	if err != nil {
		return nil, nil, fmt.Errorf("syslog: %w", err)
	}
	s := &syslogSink{w: sw}
	// syslog stamps the time itself.
	hopts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	var inner slog.Handler = slog.NewTextHandler(s, hopts)
	if opts.JSON {
		inner = slog.NewJSONHandler(s, hopts)
	}
	return slog.New(&syslogHandler{inner: inner, sink: s}), sw, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// syslogSink writes each formatted record at the severity of the record
// being handled.
type syslogSink struct {
	mu    sync.Mutex // held by syslogHandler.Handle around the write
	w     *syslog.Writer
	level slog.Level
}

func (s *syslogSink) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	var err error
	switch {
	case s.level >= slog.LevelError:
		err = s.w.Err(msg)
	case s.level >= slog.LevelWarn:
		err = s.w.Warning(msg)
	case s.level >= slog.LevelInfo:
		err = s.w.Info(msg)
	default:
		err = s.w.Debug(msg)
	}
	return len(p), err
}

// syslogHandler formats with inner and sends through sink at the record's
// severity.
type syslogHandler struct {
	inner slog.Handler
	sink  *syslogSink
}

func (h *syslogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	h.sink.level = r.Level
	return h.inner.Handle(ctx, r)
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &syslogHandler{inner: h.inner.WithAttrs(as), sink: h.sink}
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	return &syslogHandler{inner: h.inner.WithGroup(name), sink: h.sink}
}
