//go:build !linux

package testbed

import "syscall"

// sysProcAttr is nil: only Linux kills children with their parent.
func sysProcAttr() *syscall.SysProcAttr { return nil }
