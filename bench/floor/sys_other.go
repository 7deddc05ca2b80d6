//go:build !(linux && amd64)

package main

import (
	"errors"
	"net"
)

var errNoRawMode = errors.New("mode block needs linux/amd64")

func serveBlocking(*net.UDPConn) error { return errNoRawMode }
