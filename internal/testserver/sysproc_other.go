//go:build !linux

package testserver

import "os/exec"

// setParentDeathSignal does nothing outside Linux, which has no parent death
// signal. A test binary killed there can leave its server running.
func setParentDeathSignal(*exec.Cmd) {}
