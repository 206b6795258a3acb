package awskms

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
)

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// findRecord is the first JSON record in log whose msg contains msg; every
// line must be a JSON record.
func findRecord(t *testing.T, log *bytes.Buffer, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	sc := bufio.NewScanner(bytes.NewReader(log.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if s, _ := rec["msg"].(string); found == nil && strings.Contains(s, msg) {
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("no log record says %q in %s", msg, log)
	}
	return found
}

// TestSDKLogger: the SDK's warnings are slog warnings, the rest debug, each
// a JSON record marked as the SDK's.
func TestSDKLogger(t *testing.T) {
	for _, tc := range []struct {
		class logging.Classification
		level string
	}{
		{logging.Warn, "WARN"},
		{logging.Debug, "DEBUG"},
	} {
		t.Run(string(tc.class), func(t *testing.T) {
			var log bytes.Buffer
			SDKLogger(newJSONLogger(&log)).Logf(tc.class, "retrying %s after %d ms", "Decrypt", 20)
			rec := findRecord(t, &log, "retrying")
			if rec["msg"] != "retrying Decrypt after 20 ms" || rec["level"] != tc.level || rec["component"] != "aws-sdk" {
				t.Errorf("record %v, want msg %q, level %s, component aws-sdk", rec, "retrying Decrypt after 20 ms", tc.level)
			}
		})
	}
}
