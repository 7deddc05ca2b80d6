package main

import (
	"net"
	"os"
)

// sdNotify sends state ("READY=1", "STOPPING=1") to systemd when kemi
// runs as a Type=notify service ($NOTIFY_SOCKET set); it does nothing
// otherwise. An abstract socket is written with a leading '@'.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
