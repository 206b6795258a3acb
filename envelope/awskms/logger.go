package awskms

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/smithy-go/logging"
)

// SDKLogger is a logging.Logger for the AWS SDK that writes to logger, so
// that the SDK's lines (a warning such as "falling back to IMDSv1") are
// JSON records like every other line rather than plain text on stderr:
// its warnings at Warn, the rest at Debug.
func SDKLogger(logger *slog.Logger) logging.Logger {
	return sdkLogger{l: logger}
}

type sdkLogger struct{ l *slog.Logger }

// Logf implements logging.Logger.
func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "aws-sdk")
}
