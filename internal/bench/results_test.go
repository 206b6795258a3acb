package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		lat  []time.Duration
		q    float64
		want time.Duration
	}{
		{lat, 0.5, 50 * time.Millisecond},
		{lat, 0.99, 99 * time.Millisecond},
		{[]time.Duration{7}, 0.99, 7},
		{nil, 0.5, 0},
	} {
		if got := percentile(tc.lat, tc.q); got != tc.want {
			t.Errorf("percentile(%d latencies, %v) = %v, want %v", len(tc.lat), tc.q, got, tc.want)
		}
	}
}

func TestRound3(t *testing.T) {
	for in, want := range map[float64]float64{
		0: 0, 1234.56789: 1234.568, 12.3456: 12.346, 0.123456: 0.123, 0.00123456: 0.001, 0.0004: 0, -5.55555: -5.556,
	} {
		if got := round3(in); got != want {
			t.Errorf("round3(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0", 0.005: "0.005", 0.1234: "0.123", 5.678: "5.68", 55.55: "55.5", 155: "155", 1810.4: "1,810", 9702: "9,702", 1234567: "1,234,567",
	} {
		if got := formatNumber(in); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0", 7: "7", 99: "99", 100: "100", 10000: "10,000", -3: "-3"} {
		if got := formatCount(in); got != want {
			t.Errorf("formatCount(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{1.27: "1.27×", 20.04: "20.0×", 265.4: "265×"} {
		if got := formatRatio(in); got != want {
			t.Errorf("formatRatio(%v) = %q, want %q", in, got, want)
		}
	}
}
