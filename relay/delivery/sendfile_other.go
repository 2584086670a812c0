//go:build !linux

package delivery

import (
	"errors"
	"net"
	"os"
)

// canSendFile: only Linux is measured; elsewhere the bytes are copied.
const canSendFile = false

var errNoSendFile = errors.New("sendfile: not on this system")

func sendMore(net.Conn, []byte) error                 { return errNoSendFile }
func sendFile(net.Conn, *os.File, int64, int64) error { return errNoSendFile }
