package main

import (
	"io"
	"log/slog"

	"github.com/s3seal/s3seal/internal/config"
)

// The configuration (variables, defaults, parsing, validation, help tables)
// is internal/config, where the repository checks can use it too; these
// names keep the commands' code as it reads.

// Config is everything s3seal reads from its environment.
type Config = config.Config

// The key services S3SEAL_KMS_PROVIDER selects.
const (
	providerKeyring = config.ProviderKeyring
	providerAWS     = config.ProviderAWS
)

// defaultKeyAlias names the keyring CMK created on first start.
const defaultKeyAlias = config.DefaultKeyAlias

// loadConfig parses and validates environ, so every command sees the same,
// checked configuration.
func loadConfig(environ []string) (Config, error) { return config.Load(environ) }

// parseConfig parses environ without validating it, for commands that need
// only part of the configuration.
func parseConfig(environ []string) (Config, error) { return config.Parse(environ) }

// newLogger writes JSON logs at the configured level.
func newLogger(w io.Writer, level string) *slog.Logger { return config.NewLogger(w, level) }
