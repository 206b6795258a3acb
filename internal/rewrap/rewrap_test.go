package rewrap

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/envelope"
)

func TestDecide(t *testing.T) {
	underA := stored{sealed: true, meta: envelope.Metadata{KeyID: "key-a", WrappedKey: []byte("wrapped-1")}}
	rewrapped := stored{sealed: true, meta: envelope.Metadata{KeyID: "key-a", WrappedKey: []byte("wrapped-2")}}
	journal, err := OpenJournal(filepath.Join(t.TempDir(), "j"))
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close(false)
	if err := journal.Record(rewrapped.meta); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		st   stored
		want Outcome
	}{
		{"plaintext", Config{}, stored{}, Skipped},
		{"plaintext, encrypting", Config{EncryptPlaintext: true}, stored{}, Encrypted},
		{"to another CMK", Config{ToKey: "alias/b", ToKeyIDs: []string{"key-b", "arn-b"}}, underA, Rewrapped},
		{"at the target CMK", Config{ToKey: "alias/a", ToKeyIDs: []string{"key-a"}}, underA, UpToDate},
		{"sealed, encrypting only", Config{EncryptPlaintext: true}, underA, UpToDate},
		{"sealed, encrypting and moving", Config{EncryptPlaintext: true, ToKey: "b", ToKeyIDs: []string{"key-b"}}, underA, Rewrapped},
		{"rotation in place", Config{Journal: journal}, underA, Rewrapped},
		{"rotation in place, done before", Config{Journal: journal}, stored{key: "x", sealed: true, meta: rewrapped.meta}, UpToDate},
		{"rotation in place, no journal", Config{}, rewrapped, Rewrapped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := (&run{cfg: tc.cfg}).decide(tc.st); got != tc.want {
				t.Errorf("decide = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		err     error
		outcome Outcome
		reason  string
	}{
		{nil, Rewrapped, ""},
		{errGone, Skipped, "deleted during the rewrap"},
		{fmt.Errorf("copy: %w", minio.ErrorResponse{Code: "PreconditionFailed", StatusCode: 412}), Skipped, "changed during the rewrap (the new content is kept)"},
		{minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, Skipped, "deleted during the rewrap"},
		{minio.ErrorResponse{Code: "AccessDenied", Message: "not allowed", StatusCode: 403}, Failed, "AccessDenied: not allowed"},
		{errors.New("boom"), Failed, "boom"},
	}
	for _, tc := range tests {
		got := outcomeOf(Result{Key: "k"}, Rewrapped, tc.err)
		if got.Outcome != tc.outcome || got.Reason != tc.reason {
			t.Errorf("%v: %s %q, want %s %q", tc.err, got.Outcome, got.Reason, tc.outcome, tc.reason)
		}
	}
}

// A journal survives its process: what one run recorded, the next skips;
// a completed run removes it.
func TestJournalResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewrap.journal")
	m := envelope.Metadata{KeyID: "k", WrappedKey: []byte{1, 2, 3}}
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if j.Done("obj", m) {
		t.Fatal("a fresh journal knows an object")
	}
	if err := j.Record(m); err != nil {
		t.Fatal(err)
	}
	j.Close(false)
	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if !j.Done("obj", m) || j.Resumed() != 1 || j.Done("obj", envelope.Metadata{KeyID: "k", WrappedKey: []byte{1, 2, 4}}) {
		t.Fatal("the reopened journal does not say exactly what was recorded")
	}
	// A copy cut off between the copy and its record: the object's
	// wrapped key is no longer the one noted when the copy began.
	before := envelope.Metadata{KeyID: "k", WrappedKey: []byte{7}}
	if err := j.Starting("cut", before); err != nil {
		t.Fatal(err)
	}
	j.Close(false)
	if j, err = OpenJournal(path); err != nil {
		t.Fatal(err)
	}
	if j.Done("cut", before) || !j.Done("cut", envelope.Metadata{KeyID: "k", WrappedKey: []byte{8}}) || j.Done("other", envelope.Metadata{KeyID: "k", WrappedKey: []byte{8}}) {
		t.Fatal("a copy cut off before its record is not told apart")
	}
	if err := j.Close(true); err != nil {
		t.Fatal(err)
	}
	if j, err = OpenJournal(path); err != nil || j.Resumed() != 0 {
		t.Fatalf("after a completed run: %v, %d recorded", err, j.Resumed())
	}
	j.Close(true)
}

func TestPutOptionsKeepWhatDescribesTheObject(t *testing.T) {
	h := http.Header{
		"Content-Type": {"text/x"}, "Content-Encoding": {"gzip"}, "Content-Disposition": {"attachment"},
		"Content-Language": {"de"}, "Cache-Control": {"no-cache"}, "Expires": {"Wed, 21 Oct 2037 07:28:00 GMT"},
		"X-Amz-Website-Redirect-Location": {"/x"}, "X-Amz-Meta-Owner": {"me"}, "Etag": {`"x"`},
	}
	o := putOptions(stored{header: h, storageClass: "REDUCED_REDUNDANCY"})
	if o.ContentType != "text/x" || o.ContentEncoding != "gzip" || o.ContentDisposition != "attachment" || o.ContentLanguage != "de" ||
		o.CacheControl != "no-cache" || o.WebsiteRedirectLocation != "/x" || o.StorageClass != "REDUCED_REDUNDANCY" ||
		o.Expires.Year() != 2037 || len(o.UserMetadata) != 1 || o.UserMetadata["X-Amz-Meta-Owner"] != "me" {
		t.Fatalf("%+v", o)
	}
}

func TestProgressLine(t *testing.T) {
	p := &Progress{w: io.Discard, start: time.Now().Add(-10 * time.Second), every: 1000}
	for range 4 {
		p.Listed(1 << 20)
	}
	p.Finished(Result{Size: 1 << 20, Outcome: Rewrapped})
	if got, want := p.line(), "1/4+ objects  1.0 MiB/4.0 MiB+"; got[:len(want)] != want || !strings.Contains(got, "listing") {
		t.Errorf("while listing: %q", got)
	}
	p.ListingDone()
	if got := p.line(); !strings.Contains(got, "ETA 30s") {
		t.Errorf("listed: %q, want ETA 30s (a quarter done in 10 s)", got)
	}
}
