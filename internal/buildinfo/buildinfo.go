// Package buildinfo is what s3seal knows about its own build, from the
// module and VCS data the Go toolchain embeds (runtime/debug.ReadBuildInfo),
// so `s3seal version`, the banner, the start log line and the
// s3seal_build_info metric all say the same.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// buildTime is when the binary was built, for release builds that set it
// (-ldflags "-X github.com/s3seal/s3seal/internal/buildinfo.buildTime=...");
// the toolchain records only the commit's time.
var buildTime string

// Info describes the running binary. Empty fields are unknown.
type Info struct {
	Version    string // module version: a tag, a pseudo-version or (devel)
	Revision   string // VCS commit
	Dirty      bool   // built from a tree with uncommitted changes
	CommitTime string // the commit's time (RFC 3339)
	BuildTime  string // see buildTime
	GoVersion  string
}

// Read returns the running binary's Info.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown", BuildTime: buildTime}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion, BuildTime: buildTime}
	if info.Version == "" {
		info.Version = "unknown"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Dirty = s.Value == "true"
		case "vcs.time":
			info.CommitTime = s.Value
		}
	}
	return info
}

// RevisionLabel is the revision as the metric and logs give it: the
// commit, with +dirty for a modified tree; "unknown" without VCS data.
func (i Info) RevisionLabel() string {
	if i.Revision == "" {
		return "unknown"
	}
	if i.Dirty {
		return i.Revision + "+dirty"
	}
	return i.Revision
}

// String is the one line `s3seal version` prints and the banner shows.
func (i Info) String() string {
	parts := []string{"revision " + i.RevisionLabel()}
	if i.CommitTime != "" {
		parts = append(parts, "committed "+i.CommitTime)
	}
	if i.BuildTime != "" {
		parts = append(parts, "built "+i.BuildTime)
	}
	parts = append(parts, i.GoVersion)
	return fmt.Sprintf("s3seal %s (%s)", i.Version, strings.Join(parts, ", "))
}
