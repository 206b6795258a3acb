package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/doctor"
)

func TestDoctorFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want doctorOptions
		code int
		done bool
		says string
	}{
		{nil, doctorOptions{}, 0, false, ""},
		{[]string{"--bucket", "b", "--json"}, doctorOptions{bucket: "b", json: true}, 0, false, ""},
		{[]string{"-bucket=b"}, doctorOptions{bucket: "b"}, 0, false, ""},
		{[]string{"--help"}, doctorOptions{}, exitOK, true, "Usage: s3seal doctor"},
		{[]string{"--nope"}, doctorOptions{}, exitUsage, true, "flag provided but not defined"},
		{[]string{"extra"}, doctorOptions{}, exitUsage, true, `unexpected argument "extra"`},
	} {
		var stderr bytes.Buffer
		o, code, done := parseDoctorFlags(tc.args, &stderr)
		if done != tc.done || (done && code != tc.code) || (!done && o != tc.want) || !strings.Contains(stderr.String(), tc.says) {
			t.Errorf("%v: %+v code %d done %v; stderr %s", tc.args, o, code, done, stderr.String())
		}
	}
	// Through run, a usage error is exit 2.
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"doctor", "x"}, nil, &stdout, &stderr); code != exitUsage {
		t.Errorf("doctor x: exit %d", code)
	}
	stdout.Reset()
	run(context.Background(), []string{"help"}, nil, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "s3seal doctor ...") {
		t.Errorf("usage does not list doctor:\n%s", stdout.String())
	}
}

func TestDoctorOutput(t *testing.T) {
	pass := doctor.Result{Name: "upstream", Title: "store answers", Required: true, Status: doctor.Pass, Message: "store answers (http://s)"}
	fail := doctor.Result{Name: "multipart-etag", Title: "multipart ETags end in -N", Required: true, Status: doctor.Fail, Message: `the store answered "abc" — slow listings`, Fix: "use another store"}
	skip := doctor.Result{Name: "range", Title: "Range is honoured", Required: true, Status: doctor.Skip, Message: "pass --bucket B to run it"}
	for _, tc := range []struct {
		rep  doctor.Report
		says []string
	}{
		{doctor.Report{OK: true, Checks: []doctor.Result{pass, pass}}, []string{"All 2 required checks passed."}},
		{doctor.Report{OK: false, Checks: []doctor.Result{pass, fail}}, []string{"1 required check failed: each ✗ above says what breaks and how to fix it."}},
		{doctor.Report{OK: true, Checks: []doctor.Result{pass, skip}, WritesSkipped: true}, []string{"The checks that write nothing passed.", "run s3seal doctor --bucket B", "exit status\ncovers the other checks only"}},
	} {
		var b bytes.Buffer
		if err := writeDoctorSummary(&b, tc.rep); err != nil {
			t.Fatal(err)
		}
		for _, s := range tc.says {
			if !strings.Contains(b.String(), s) {
				t.Errorf("summary %q does not say %q", b.String(), s)
			}
		}
	}
	if got, want := fail.Line(), `✗ multipart ETags end in -N: the store answered "abc" — slow listings; fix: use another store`; got != want {
		t.Errorf("line %q, want %q", got, want)
	}

	var b bytes.Buffer
	if err := writeDoctorJSON(&b, doctor.Report{OK: false, Checks: []doctor.Result{pass, fail, skip}}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OK     *bool `json:"ok"`
		Checks []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil || doc.OK == nil || *doc.OK || len(doc.Checks) != 3 {
		t.Fatalf("JSON %s: %v", b.String(), err)
	}
	for _, c := range doc.Checks {
		var keys []string
		for k := range c {
			keys = append(keys, k)
		}
		if len(c) != 5 || c["name"] == nil || c["required"] == nil || c["status"] == nil || c["message"] == nil || c["fix"] == nil {
			t.Errorf("check %v: want name, required, status, message, fix", keys)
		}
	}
	if doc.Checks[1]["status"] != "fail" || doc.Checks[2]["status"] != "skip" || !strings.Contains(b.String(), "—") {
		t.Errorf("JSON %s", b.String())
	}
	b.Reset()
	writeDoctorJSON(&b, doctor.Report{OK: true})
	if !strings.Contains(b.String(), `"checks": []`) {
		t.Errorf("no checks: %s", b.String())
	}
}

// Zero-config: with s3seal running on the data dir the doctor checks its
// embedded store (and the keyring) and passes; with none running, it starts
// the store for the run and stops it after.
func TestDoctorZeroConfig(t *testing.T) {
	dataDir := t.TempDir()
	s, stop := startServer(t, zeroConfigEnv(dataDir))
	client := s3Client(t, s.endpoint(), s.cred.AccessKey, s.cred.SecretKey)
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("demo")}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"doctor", "--bucket", "demo"}, zeroConfigEnv(dataDir), &stdout, &stderr); code != exitOK {
		t.Fatalf("doctor against a running s3seal: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "embedded store at http://127.0.0.1:") || strings.Contains(out, "✗") || strings.Contains(out, "skipped") ||
		!strings.Contains(out, "All ") || strings.Count(out, "✓") != len(doctor.Checks()) {
		t.Errorf("output:\n%s", out)
	}
	stop()

	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"doctor", "--json"}, zeroConfigEnv(dataDir), &stdout, &stderr); code != exitOK {
		t.Fatalf("doctor with no s3seal running: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	var doc struct {
		OK     bool
		Checks []doctor.Result
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || !doc.OK {
		t.Fatalf("JSON %s: %v", stdout.String(), err)
	}
	for _, r := range doc.Checks {
		if want := map[bool]doctor.Status{true: doctor.Skip, false: doctor.Pass}[isWriting(r.Name)]; r.Status != want {
			t.Errorf("%s: %s %s", r.Name, r.Status, r.Message)
		}
	}
	// The doctor's own store is stopped: s3seal starts on the data dir again.
	startZeroConfig(t, dataDir)
}

func isWriting(name string) bool {
	for _, c := range doctor.Checks() {
		if c.Name == name {
			return c.Writes
		}
	}
	panic(errors.New("no check " + name))
}

// A configuration that cannot work stops the doctor's run with exit 1 and a
// line that says why.
func TestDoctorMissingKeyringKey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	dataDir := t.TempDir()
	keysJSON(t, dataDir, "create")
	env := append(zeroConfigEnv(dataDir), "S3SEAL_KMS_KEY_ID=alias/typo")
	if code := run(context.Background(), []string{"doctor"}, env, &stdout, &stderr); code != exitError {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `✗ the KMS key (S3SEAL_KMS_KEY_ID) resolves and is enabled: S3SEAL_KMS_KEY_ID "alias/typo" names no CMK`) ||
		!strings.Contains(stdout.String(), "1 required check failed") {
		t.Errorf("output:\n%s", stdout.String())
	}
}

// The commands beside serve use its data dir; they make none (nor a
// keyring, nor a key, nor a store): a missing one is most likely a
// mistyped S3SEAL_DATA_DIR.
func TestCommandsMissingDataDir(t *testing.T) {
	base := t.TempDir()
	missing, empty := filepath.Join(base, "missing"), filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	const fix = ": set S3SEAL_DATA_DIR to the data dir of your s3seal serve, or start s3seal serve once to create it"
	tests := []struct {
		args      []string
		dir, want string
	}{
		{[]string{"doctor"}, missing, "s3seal doctor: S3SEAL_DATA_DIR=" + missing + " does not exist" + fix},
		{[]string{"doctor"}, empty, "s3seal doctor: S3SEAL_DATA_DIR=" + empty + " has no keyring.json (no key was ever made there)" + fix},
		{[]string{"inspect", "s3://b/k"}, missing, "s3seal inspect: S3SEAL_DATA_DIR=" + missing + " does not exist" + fix},
		{[]string{"decrypt", "s3://b/k", "-o", filepath.Join(base, "out")}, missing, "S3SEAL_DATA_DIR=" + missing + " does not exist" + fix},
		{[]string{"rewrap", "--bucket", "b"}, empty, "s3seal rewrap: S3SEAL_DATA_DIR=" + empty + " has no keyring.json"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, zeroConfigEnv(tt.dir), &stdout, &stderr); code != exitError || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tt.args, code, stderr.String(), tt.want)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("a command left %v in the data dir", entries)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a command made the data dir: %v", err)
	}
}
