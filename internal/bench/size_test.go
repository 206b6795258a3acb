package bench

import (
	"slices"
	"testing"
)

func TestParseSizes(t *testing.T) {
	good := map[string][]int64{
		"4KiB,64KiB,1MiB,16MiB": {4 << 10, 64 << 10, 1 << 20, 16 << 20},
		"1":                     {1},
		" 16MiB , 4k ":          {4 << 10, 16 << 20},
		"1000B,2KB":             {1000, 2000},
		"1GiB":                  {1 << 30},
		"3M,1g":                 {3 << 20, 1 << 30},
	}
	for in, want := range good {
		got, err := ParseSizes(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseSizes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ",", "0", "4KiB,4096", "1000B,1kb", "1.5MiB", "-1", "4 parsecs", "2GiB", "MiB", "99999999999999999999"} {
		if got, err := ParseSizes(in); err == nil {
			t.Errorf("ParseSizes(%q) = %v, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{1: "1B", 1000: "1000B", 4096: "4KiB", 65536: "64KiB", 1 << 20: "1MiB", 3 << 30: "3GiB", 1536: "1536B"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
