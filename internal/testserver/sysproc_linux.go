package testserver

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes Linux send SIGKILL to the child when the test
// process dies, so a test binary killed by `go test -timeout` leaves no
// server running. The signal follows the OS thread that started the child.
// Go does not end such threads while goroutines run unlocked, which is the
// case here.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
