package main

import (
	"fmt"
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

// loadConfig parses and validates the environment, so every command sees
// the same, checked configuration, and reports unknown S3SEAL_ variables
// on stderr (an error with S3SEAL_STRICT_CONFIG).
func (c cli) loadConfig() (Config, error) {
	cfg, err := config.Load(c.environ)
	if err != nil {
		// A misspelling may be why the configuration is wrong.
		c.warnUnknown()
		return Config{}, err
	}
	return cfg, c.checkUnknown(cfg, nil)
}

// parseConfig parses the environment without validating it, for commands
// that need only part of the configuration; unknown variables as in
// loadConfig.
func (c cli) parseConfig() (Config, error) {
	cfg, err := config.Parse(c.environ)
	if err != nil {
		c.warnUnknown()
		return Config{}, err
	}
	return cfg, c.checkUnknown(cfg, nil)
}

// checkUnknown warns about each unknown S3SEAL_ variable, through logger
// (serve's JSON log) or, if nil, on stderr; with cfg.StrictConfig they are
// an error instead. Values are never shown: they may be secrets.
func (c cli) checkUnknown(cfg Config, logger *slog.Logger) error {
	unknown, err := config.CheckUnknown(c.environ, cfg.StrictConfig)
	if err != nil {
		return err
	}
	for _, u := range unknown {
		if logger != nil {
			logger.Warn(u.String(), "variable", u.Name, "suggestion", u.Suggestion)
		} else {
			fmt.Fprintf(c.stderr, "s3seal: warning: %s\n", u)
		}
	}
	return nil
}

// warnUnknown prints the unknown variables on stderr whatever
// S3SEAL_STRICT_CONFIG says, for when the configuration did not load.
func (c cli) warnUnknown() {
	for _, u := range config.UnknownVars(c.environ) {
		fmt.Fprintf(c.stderr, "s3seal: warning: %s\n", u)
	}
}

// newLogger writes JSON logs at the configured level.
func newLogger(w io.Writer, level string) *slog.Logger { return config.NewLogger(w, level) }
