//go:build !(linux && amd64)

package main

import (
	"errors"
	"net"
)

var errNoRawMode = errors.New("modes block and batch need linux/amd64")

func serveBlocking(*net.UDPConn) error { return errNoRawMode }
func serveBatch(*net.UDPConn) error    { return errNoRawMode }
