// Package rewrap re-encrypts the data keys of a bucket's objects under
// another CMK, or under the current material of their own CMK after a
// rotation, and brings objects written without s3seal into its format
// (docs/FORMAT.md §11.5).
//
// Every change is a request to an s3seal endpoint (the command starts one
// in-process), so the proxy stays the one implementation of copies and of
// encryption: a rewrap is a self-copy under a chosen CMK, which re-wraps the
// data key with KMS ReEncrypt and has the store copy the stored bytes
// unchanged (part by part for multipart objects); encrypting a plaintext
// object is a read and a conditional write through s3seal. Both are
// conditional on the ETag the decision was made on, so an object changed
// meanwhile is skipped and reported, never clobbered. What an object is —
// whether s3seal sealed it, and under which CMK — is read from the store
// itself, since s3seal never shows its own metadata.
package rewrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/store"
)

// Config configures a Run.
type Config struct {
	// S3 is a client of an s3seal endpoint that serves plaintext reads
	// (AllowPlaintextReads) and may use every CMK involved.
	S3 *minio.Client
	// Store is the store behind it, only ever asked HEAD: what s3seal
	// stored beside each object.
	Store          *store.Client
	Bucket, Prefix string
	// ToKey is the CMK to move objects to, as the key service may be asked
	// for it; ToKeyIDs every canonical id of it (kms.KeyResolver), to tell
	// which objects are there already. ToKey "" keeps each object's own CMK
	// and re-wraps it under that CMK's current material.
	ToKey    string
	ToKeyIDs []string
	// EncryptPlaintext encrypts objects s3seal did not write; the objects it
	// did are left alone unless ToKey names another CMK.
	EncryptPlaintext bool
	// AllVersions includes the noncurrent versions of a versioned bucket:
	// a key whose history needs a rewrap has it replayed (versions.go).
	AllVersions bool
	Concurrency int  // keys at a time; < 1 means 1
	DryRun      bool // decide and report, change nothing
	// Journal is what a run leaves for the next (journal.go): required by
	// a rotation in place (which the store's metadata cannot tell done) and
	// by AllVersions; nil means none.
	Journal *Journal
	// Observe is told about each object listed and finished; nil: nobody.
	Observe Observer
}

// Observer follows a run: the progress display and the metrics.
type Observer interface {
	Listed(size int64)
	ListingDone()
	Finished(r Result)
}

// Outcome is what became of one object.
type Outcome string

const (
	Rewrapped Outcome = "rewrapped"  // its data key is re-wrapped (or, in a dry run, would be)
	Encrypted Outcome = "encrypted"  // it was plaintext and is now sealed (or would be)
	UpToDate  Outcome = "up_to_date" // nothing to do
	Skipped   Outcome = "skipped"    // left as it is, for Reason (changed meanwhile, not sealed, ...)
	Failed    Outcome = "failed"     // an error, in Reason
)

// Result is one object's outcome.
type Result struct {
	Key       string  `json:"key"`
	VersionID string  `json:"version_id,omitempty"` // with AllVersions
	Size      int64   `json:"size"`
	Outcome   Outcome `json:"outcome"`
	Reason    string  `json:"reason,omitempty"`
}

// Summary is a whole run.
type Summary struct {
	DryRun    bool           `json:"dry_run"`
	Counts    map[string]int `json:"counts"` // by Outcome
	Bytes     int64          `json:"bytes"`  // plaintext bytes rewrapped or encrypted
	Skipped   []Result       `json:"skipped"`
	Failed    []Result       `json:"failed"`
	Elapsed   time.Duration  `json:"-"`
	Seconds   float64        `json:"seconds"`
	Completed bool           `json:"completed"` // every listed object was decided (not interrupted)
}

// Run rewraps (or encrypts) the objects under cfg.Prefix in cfg.Bucket. It
// returns when every object is done or ctx ends; the error is for the run
// as a whole (listing failed, interrupted), per-object failures are in the
// summary.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	r := &run{cfg: cfg, sum: Summary{DryRun: cfg.DryRun, Counts: map[string]int{}, Skipped: []Result{}, Failed: []Result{}}}
	jobs := make(chan []minio.ObjectInfo)
	var wg sync.WaitGroup
	for range max(cfg.Concurrency, 1) {
		wg.Go(func() {
			for versions := range jobs {
				if !cfg.AllVersions {
					r.finish(r.object(ctx, versions[0]))
					continue
				}
				for _, res := range r.history(ctx, versions) {
					r.finish(res)
				}
			}
		})
	}
	listErr := r.checkVersioning(ctx)
	if listErr == nil {
		listErr = r.list(ctx, jobs)
	}
	close(jobs)
	wg.Wait()
	r.sum.Elapsed = time.Since(start)
	r.sum.Seconds = r.sum.Elapsed.Seconds()
	err := cmp.Or(listErr, ctx.Err())
	r.sum.Completed = err == nil
	return r.sum, err
}

type run struct {
	cfg Config
	mu  sync.Mutex
	sum Summary
}

// list feeds every key under the prefix to jobs: its current version, or
// with AllVersions every version, newest first (as S3 lists them).
func (r *run) list(ctx context.Context, jobs chan<- []minio.ObjectInfo) error {
	defer r.observe(func(o Observer) { o.ListingDone() })
	opts := minio.ListObjectsOptions{Prefix: r.cfg.Prefix, Recursive: true, WithVersions: r.cfg.AllVersions}
	var key []minio.ObjectInfo
	send := func() bool {
		if len(key) == 0 {
			return true
		}
		select {
		case jobs <- key:
			key = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for obj := range r.cfg.S3.ListObjects(ctx, r.cfg.Bucket, opts) {
		if obj.Err != nil {
			return fmt.Errorf("listing s3://%s/%s: %w", r.cfg.Bucket, r.cfg.Prefix, obj.Err)
		}
		if len(key) > 0 && key[0].Key != obj.Key && !send() {
			return ctx.Err()
		}
		if !obj.IsDeleteMarker {
			r.observe(func(o Observer) { o.Listed(obj.Size) })
		}
		key = append(key, obj)
	}
	if !send() {
		return ctx.Err()
	}
	return nil
}

func (r *run) observe(f func(Observer)) {
	if r.cfg.Observe != nil {
		f(r.cfg.Observe)
	}
}

func (r *run) finish(res Result) {
	r.mu.Lock()
	r.sum.Counts[string(res.Outcome)]++
	switch res.Outcome {
	case Rewrapped, Encrypted:
		r.sum.Bytes += res.Size
	case Skipped:
		r.sum.Skipped = append(r.sum.Skipped, res)
	case Failed:
		r.sum.Failed = append(r.sum.Failed, res)
	}
	r.mu.Unlock()
	r.observe(func(o Observer) { o.Finished(res) })
}

// stored is what the store holds beside an object.
type stored struct {
	key                string
	etag, storageClass string
	size               int64
	header             http.Header
	sealed             bool
	meta               envelope.Metadata
}

// errGone means the object was deleted after it was listed.
var errGone = errors.New("deleted during the rewrap")

// head asks the store what it holds for key now (versionID "": the current
// version).
func (r *run) head(ctx context.Context, key, versionID string) (stored, error) {
	obj := store.Object{Bucket: r.cfg.Bucket, Key: key, VersionID: versionID}
	resp, err := r.cfg.Store.Do(ctx, obj.Request(http.MethodHead, nil, http.Header{}))
	if err != nil {
		return stored{}, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return stored{}, errGone
	default:
		return stored{}, fmt.Errorf("HEAD of the stored object answered %d", resp.StatusCode)
	}
	st := stored{key: key, etag: resp.Header.Get("ETag"), storageClass: resp.Header.Get("X-Amz-Storage-Class"), size: resp.ContentLength, header: resp.Header}
	meta, err := envelope.ParseHeader(resp.Header)
	switch {
	case errors.Is(err, envelope.ErrNoMetadata):
	case err != nil:
		return stored{}, fmt.Errorf("s3seal metadata: %w", err)
	default:
		st.sealed, st.meta = true, meta
	}
	if st.etag == "" {
		return stored{}, errors.New("the store gave no ETag")
	}
	return st, nil
}

// object decides about one listed object and acts on it.
func (r *run) object(ctx context.Context, obj minio.ObjectInfo) Result {
	res := Result{Key: obj.Key, Size: obj.Size}
	st, err := r.head(ctx, obj.Key, "")
	if err != nil {
		return outcomeOf(res, Rewrapped, err)
	}
	act := r.decide(st)
	switch act {
	case Encrypted:
		res.Size = st.size
	case Skipped:
		res.Outcome, res.Reason = Skipped, "not written through s3seal (--encrypt-plaintext encrypts it)"
		return res
	case UpToDate:
		res.Outcome = UpToDate
		return res
	}
	if r.cfg.DryRun {
		res.Outcome = act
		return res
	}
	if act == Encrypted {
		_, err := r.encrypt(ctx, obj.Key, "", st, copyCondition{etag: st.etag})
		return outcomeOf(res, Encrypted, err)
	}
	_, err = r.rewrap(ctx, obj.Key, "", st, copyCondition{etag: st.etag})
	return outcomeOf(res, Rewrapped, err)
}

// decide says what to do with an object: Rewrapped, Encrypted, UpToDate,
// or Skipped (plaintext without EncryptPlaintext).
func (r *run) decide(st stored) Outcome {
	cfg := r.cfg
	switch {
	case !st.sealed && cfg.EncryptPlaintext:
		return Encrypted
	case !st.sealed:
		return Skipped
	case cfg.ToKey != "" && slices.Contains(cfg.ToKeyIDs, st.meta.KeyID):
		return UpToDate
	case cfg.ToKey != "":
		return Rewrapped
	case cfg.EncryptPlaintext:
		return UpToDate // sealed already; no other CMK asked for
	case cfg.Journal != nil && cfg.Journal.Done(st.key, st.meta):
		return UpToDate
	}
	return Rewrapped
}

// outcomeOf is res with outcome done for a nil err, or what err means.
func outcomeOf(res Result, done Outcome, err error) Result {
	var er minio.ErrorResponse
	switch {
	case err == nil:
		res.Outcome = done
	case errors.Is(err, errGone):
		res.Outcome, res.Reason = Skipped, err.Error()
	case errors.As(err, &er) && (er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed):
		res.Outcome, res.Reason = Skipped, "changed during the rewrap (the new content is kept)"
	case errors.As(err, &er) && er.Code == "NoSuchKey":
		res.Outcome, res.Reason = Skipped, errGone.Error()
	case errors.As(err, &er):
		res.Outcome, res.Reason = Failed, fmt.Sprintf("%s: %s", er.Code, er.Message)
	default:
		res.Outcome, res.Reason = Failed, err.Error()
	}
	return res
}

// rewrap has s3seal copy the object (or its version versionID) onto itself
// under the target CMK, keeping its metadata, tags and storage class, if the
// source still has the ETag st was read with and the key's current version
// is still what cond says (copyCondition): a write meanwhile wins, even
// during a multipart copy's part copies. It returns the copy's ETag. In a
// rotation in place, the journal then records the copy.
func (r *run) rewrap(ctx context.Context, key, versionID string, st stored, cond copyCondition) (string, error) {
	h := map[string]string{
		"X-Amz-Server-Side-Encryption":                "aws:kms",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": cmp.Or(r.cfg.ToKey, st.meta.KeyID),
		"X-Amz-Copy-Source-If-Match":                  st.etag,
		"X-Amz-Metadata-Directive":                    "COPY",
		"X-Amz-Tagging-Directive":                     "COPY",
	}
	cond.set(h)
	if len(st.meta.Context) > 0 {
		// A copy gets the context its request names (as on S3): the
		// object's own, so that it keeps its binding — as s3seal
		// unwrapped it, not as the store's HEAD claimed it.
		encCtx, err := r.verifiedContext(ctx, key, versionID, st.etag)
		if err != nil {
			return "", err
		}
		h["X-Amz-Server-Side-Encryption-Context"] = encCtx
	}
	if st.storageClass != "" {
		h["X-Amz-Storage-Class"] = st.storageClass
	}
	rotation := r.cfg.Journal != nil && r.cfg.ToKey == ""
	if rotation {
		if err := r.cfg.Journal.Starting(key, st.meta); err != nil {
			return "", err
		}
	}
	core := minio.Core{Client: r.cfg.S3}
	src := minio.CopySrcOptions{VersionID: versionID}
	info, err := core.CopyObject(ctx, r.cfg.Bucket, key, r.cfg.Bucket, key, h, src, minio.PutObjectOptions{})
	if err != nil {
		return "", err
	}
	if !rotation {
		return info.ETag, nil
	}
	after, err := r.head(ctx, key, "")
	if err != nil {
		return "", fmt.Errorf("rewrapped, but not recorded for a resumed run: %w", err)
	}
	return info.ETag, r.cfg.Journal.Record(after.meta)
}

// verifiedContext is the encryption context of the object (version
// versionID) with etag, as s3seal answers it on a GET: once the data key
// has been unwrapped under it. Only the answer's headers are read.
func (r *run) verifiedContext(ctx context.Context, key, versionID, etag string) (string, error) {
	opts := minio.GetObjectOptions{VersionID: versionID}
	if err := opts.SetMatchETag(trimETag(etag)); err != nil {
		return "", err
	}
	body, _, h, err := minio.Core{Client: r.cfg.S3}.GetObject(ctx, r.cfg.Bucket, key, opts)
	if err != nil {
		return "", err
	}
	body.Close()
	v := h.Get("X-Amz-Server-Side-Encryption-Context")
	if _, err := envelope.DecodeContext(v); err != nil {
		return "", fmt.Errorf("the store's answers disagree on the object's encryption context: %w", err)
	}
	return v, nil
}

// copyCondition is what a write requires of the key's current version: an
// ETag (If-Match), or none at all (If-None-Match: *, after a delete marker).
type copyCondition struct {
	etag   string
	absent bool
}

func (c copyCondition) set(h map[string]string) {
	switch {
	case c.absent:
		h["If-None-Match"] = "*"
	case c.etag != "":
		h["If-Match"] = `"` + trimETag(c.etag) + `"`
	}
}
