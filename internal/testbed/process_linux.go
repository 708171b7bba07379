package testbed

import "syscall"

// sysProcAttr has the kernel kill a child should the test or benchmark
// process die before it stops the child.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
