package queuestest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer starts a NATS server with JetStream in the test process, on a random loopback
// port with its store under t.TempDir(), and shuts it down at the end of the test. It returns
// the server, whose ClientURL is the db_url to use.
func NATSServer(t testing.TB) *server.Server {
	t.Helper()
	return NATSServerAt(t, -1, t.TempDir())
}

// NATSServerAt starts a NATS server with JetStream on port (-1: random) with its store in dir,
// so that a test can stop it and start it again on the same port and store.
func NATSServerAt(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready within 10 s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}
