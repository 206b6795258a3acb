package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bi       debug.BuildInfo
		revision string
		line     string
	}{
		{"tagged", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}}},
			"abc123", "s3seal v1.2.3 (revision abc123, committed 2026-12-01T10:00:00Z, go1.26.8)"},
		{"dirty", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}},
			"abc123+dirty", "s3seal (devel) (revision abc123+dirty, go1.26.8)"},
		{"no vcs", debug.BuildInfo{GoVersion: "go1.26.8"}, "unknown", "s3seal unknown (revision unknown, go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := fromBuildInfo(&tc.bi)
			if got := info.RevisionLabel(); got != tc.revision {
				t.Errorf("RevisionLabel = %q, want %q", got, tc.revision)
			}
			if got := info.String(); got != tc.line {
				t.Errorf("String = %q, want %q", got, tc.line)
			}
		})
	}
}

func TestBuildTime(t *testing.T) {
	old := buildTime
	defer func() { buildTime = old }()
	buildTime = "2026-12-02T05:00:00Z"
	if s := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1"}).String(); !strings.Contains(s, "built 2026-12-02T05:00:00Z") {
		t.Errorf("String = %q, no build time", s)
	}
}
