//go:build linux

package bench

import (
	"time"

	"github.com/prometheus/procfs"
)

// processCPUOf is the CPU time, user and system, process pid has used so
// far, all threads together: /proc/<pid>/stat, in the kernel's 10 ms ticks,
// as s3seal's process_cpu_seconds_total reads its own, so that the hop and
// s3seal are measured alike.
func processCPUOf(pid int) (time.Duration, bool) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, false
	}
	s, err := p.Stat()
	if err != nil {
		return 0, false
	}
	return time.Duration(s.CPUTime() * float64(time.Second)), true
}
