package bench

import "time"

// gib is a gibibyte: the unit of the CPU figures.
const gib = 1 << 30

// cpuPerGiB is CPU seconds per GiB for cpu spent moving bytes bytes; ok is
// false when there is nothing to divide by.
func cpuPerGiB(cpu time.Duration, bytes int64) (float64, bool) {
	if bytes <= 0 {
		return 0, false
	}
	return cpu.Seconds() / (float64(bytes) / gib), true
}

// cpuMeter measures a process's CPU time over an interval, as read reads
// it (processCPU for this one): start it, then call the function it
// returns. ok is false where the platform cannot say.
func cpuMeter(read func() (time.Duration, bool)) func() (cpu time.Duration, ok bool) {
	start, ok0 := read()
	return func() (time.Duration, bool) {
		end, ok1 := read()
		return end - start, ok0 && ok1
	}
}
