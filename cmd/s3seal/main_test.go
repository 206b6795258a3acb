package main

import (
	"os"
	"testing"

	"github.com/s3seal/s3seal/internal/embeddedstore"
)

// TestMain lets this test binary be the embedded store's child process, as
// the s3seal binary is: servers started by these tests spawn it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == embeddedstore.ChildCommand {
		os.Exit(embeddedstore.RunChild(os.Stdin, os.Stderr))
	}
	os.Exit(m.Run())
}
