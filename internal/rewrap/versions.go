package rewrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/minio/minio-go/v7"
)

// Noncurrent versions (AllVersions). S3 cannot change a version in place:
// a self-copy always makes a new current version. So a key whose history
// holds a version to rewrap is replayed: every version, oldest first, is
// copied onto the key (delete markers made again), under the target CMK,
// so that the copies keep the history's order and its newest is current
// again; then, once the key is seen to hold exactly the copies above the
// old versions, the old versions are deleted.
//
// Each step is conditional on the key's current version being the one the
// step before left (the original newest, then each copy in turn), so a
// client's write meanwhile stops the replay and stays current. A replay
// that fails otherwise is undone forward: the original newest version is
// copied on top again. A started replay runs to its end even when the run
// is interrupted, and the journal brackets it, so that one cut off by a
// crash is reported, not replayed over (README, "Rewrapping versioned
// buckets"). Readers of the key may see an older version as current while
// a replay runs, and versions get new ids and dates.

// checkVersioning refuses AllVersions on a bucket whose versioning is not
// enabled: there a self-copy replaces the object, and deleting its old
// version (the "null" one) would delete the object itself.
func (r *run) checkVersioning(ctx context.Context) error {
	if !r.cfg.AllVersions {
		return nil
	}
	if r.cfg.Journal == nil && !r.cfg.DryRun {
		return errors.New("--all-versions needs a journal")
	}
	v, err := r.cfg.S3.GetBucketVersioning(ctx, r.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("--all-versions: reading the bucket's versioning: %w", err)
	}
	if !v.Enabled() {
		return fmt.Errorf("--all-versions: versioning of s3://%s is not enabled (%q): there are no older versions to rewrap", r.cfg.Bucket, v.Status)
	}
	return nil
}

var (
	// errHasPlaintext means a key's history holds a version s3seal did not
	// write, which it cannot copy: the key is left as it is.
	errHasPlaintext = errors.New("a version not written through s3seal (--encrypt-plaintext encrypts it)")
	// errInterleaved means a client wrote to the key during its replay.
	errInterleaved = errors.New("written to during the replay: the write stays current; the copies made stay in the history and the old versions are kept")
	// errCutOff means an earlier run crashed in the key's replay.
	errCutOff = errors.New("an earlier run was cut off while replaying this key's history, so its current version may be a copy of an older one; " +
		"restore the newest version (README, \"Rewrapping versioned buckets\"), then delete this run's journal and run again")
)

// history rewraps the versions of one key (newest first, as listed).
func (r *run) history(ctx context.Context, versions []minio.ObjectInfo) []Result {
	key := versions[0].Key
	oldest := slices.Clone(versions)
	slices.Reverse(oldest)
	plan, needed, err := r.planHistory(ctx, oldest)
	switch {
	case err == nil && r.cfg.Journal != nil && r.cfg.Journal.Interrupted(key):
		return plan.results(errCutOff, false)
	case err != nil || !needed || r.cfg.DryRun:
		return plan.results(err, needed && r.cfg.DryRun)
	}
	// From here on the key must end with its newest version current.
	ctx = context.WithoutCancel(ctx)
	if err := r.cfg.Journal.StartReplay(key); err != nil {
		return plan.results(err, false)
	}
	if err := r.replayAll(ctx, oldest, plan); err != nil {
		return plan.results(err, false)
	}
	if err := r.checkReplayed(ctx, versions); err != nil {
		return plan.results(r.endReplay(key, err), false)
	}
	for _, v := range versions {
		if err := r.cfg.S3.RemoveObject(ctx, r.cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: v.VersionID}); err != nil {
			return plan.results(r.endReplay(key, fmt.Errorf("copies made, but deleting the old version %s: %w", v.VersionID, err)), false)
		}
	}
	return plan.results(r.endReplay(key, nil), true)
}

// endReplay notes in the journal that key's current version is right
// again, and returns err (or the journal's failure).
func (r *run) endReplay(key string, err error) error {
	return errors.Join(err, r.cfg.Journal.EndReplay(key))
}

// replayAll copies every version onto the key, oldest first, each
// conditional on the key's current version being the last one written. A
// failure other than a client's write is undone forward.
func (r *run) replayAll(ctx context.Context, oldest []minio.ObjectInfo, plan versionPlan) error {
	newest := len(oldest) - 1
	cond := currentIs(oldest[newest], oldest[newest].ETag)
	for i, v := range oldest {
		etag, err := r.replay(ctx, v, plan[i], cond)
		switch {
		case err == nil:
			cond = currentIs(v, etag)
			continue
		case isPreconditionFailed(err):
			return r.endReplay(v.Key, fmt.Errorf("%w (%v)", errInterleaved, err))
		case i == 0:
			return r.endReplay(v.Key, err) // nothing written yet
		}
		// The key's current version is the copy of an older one: make the
		// newest current again. If that fails too the journal keeps the
		// replay open, and the next run reports the key.
		if _, rerr := r.replay(ctx, oldest[newest], plan[newest], cond); rerr != nil {
			return fmt.Errorf("replaying version %s: %w; restoring the newest version failed too: %v", v.VersionID, err, rerr)
		}
		return r.endReplay(v.Key, fmt.Errorf("replaying version %s: %w (the newest version is current again)", v.VersionID, err))
	}
	return nil
}

// currentIs is the condition that the key's current version is v, whose
// ETag (a copy's, for a copy) is etag.
func currentIs(v minio.ObjectInfo, etag string) copyCondition {
	if v.IsDeleteMarker {
		return copyCondition{absent: true}
	}
	return copyCondition{etag: etag}
}

func isPreconditionFailed(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed)
}

// versionPlan is what happens to each version of a key, oldest first.
type versionPlan []versionStep

type versionStep struct {
	res    Result
	st     stored
	act    Outcome // Rewrapped, Encrypted, UpToDate; "" for a delete marker
	marker bool
}

// planHistory decides about each version; needed reports whether any must
// change. A version s3seal cannot copy (plaintext, without
// EncryptPlaintext) stops the key's replay.
func (r *run) planHistory(ctx context.Context, oldest []minio.ObjectInfo) (versionPlan, bool, error) {
	plan := make(versionPlan, len(oldest))
	needed := false
	for i, v := range oldest {
		plan[i].res = Result{Key: v.Key, VersionID: v.VersionID, Size: v.Size}
		if v.IsDeleteMarker {
			plan[i].marker = true
			continue
		}
		st, err := r.head(ctx, v.Key, v.VersionID)
		if err != nil {
			return plan, false, err
		}
		plan[i].st, plan[i].act = st, r.decide(st)
		switch plan[i].act {
		case Skipped:
			return plan, false, errHasPlaintext
		case Rewrapped, Encrypted:
			needed = true
		}
	}
	return plan, needed, nil
}

// results is one Result per version (delete markers left out): the failure
// err for all, or what each became (changed: the replay ran or would run).
func (p versionPlan) results(err error, changed bool) []Result {
	var out []Result
	for _, s := range p {
		if s.marker {
			continue
		}
		res := s.res
		switch {
		case errors.Is(err, errHasPlaintext):
			res.Outcome, res.Reason = Skipped, err.Error()
		case err != nil:
			res.Outcome, res.Reason = Failed, err.Error()
		case !changed:
			res.Outcome = UpToDate
		case s.act == Encrypted:
			res.Outcome = Encrypted
		default: // every version of a replayed key is copied under the target CMK
			res.Outcome = Rewrapped
		}
		out = append(out, res)
	}
	return out
}

// replay writes version v again as the key's newest, under the target CMK
// (re-wrapped even where it was up to date: the order needs every copy),
// if the key's current version is what cond says; it returns the new
// version's ETag.
func (r *run) replay(ctx context.Context, v minio.ObjectInfo, s versionStep, cond copyCondition) (string, error) {
	switch {
	case s.marker:
		return "", r.deleteMarker(ctx, v.Key, cond)
	case s.act == Encrypted:
		return r.encrypt(ctx, v.Key, v.VersionID, s.st, cond)
	}
	return r.rewrap(ctx, v.Key, v.VersionID, s.st, cond)
}

// deleteMarker makes a delete marker the key's current version, after
// checking that the current version is what cond says (S3 has no
// conditional delete: a write in the instant between is the one race left,
// and the next step's condition then fails on the marker).
func (r *run) deleteMarker(ctx context.Context, key string, cond copyCondition) error {
	st, err := r.head(ctx, key, "")
	switch {
	case errors.Is(err, errGone) && cond.absent:
	case err != nil:
		return err
	case cond.absent || trimETag(st.etag) != trimETag(cond.etag):
		return minio.ErrorResponse{Code: "PreconditionFailed", StatusCode: http.StatusPreconditionFailed, Message: "the current version changed"}
	}
	return r.cfg.S3.RemoveObject(ctx, r.cfg.Bucket, key, minio.RemoveObjectOptions{})
}

// checkReplayed checks that the key's history is now the replayed copies
// above exactly the old versions (newest first): anything else means a
// client wrote meanwhile, and nothing old is deleted.
func (r *run) checkReplayed(ctx context.Context, old []minio.ObjectInfo) error {
	var now []string
	for v := range r.cfg.S3.ListObjects(ctx, r.cfg.Bucket, minio.ListObjectsOptions{Prefix: old[0].Key, WithVersions: true}) {
		if v.Err != nil {
			return v.Err
		}
		if v.Key == old[0].Key {
			now = append(now, v.VersionID)
		}
	}
	if len(now) != 2*len(old) {
		return errInterleaved
	}
	for i, v := range old {
		if now[len(old)+i] != v.VersionID || slices.Contains(now[:len(old)], v.VersionID) {
			return errInterleaved
		}
	}
	return nil
}
