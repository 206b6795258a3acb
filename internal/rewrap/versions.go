package rewrap

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/minio/minio-go/v7"
)

// Noncurrent versions (AllVersions). S3 cannot change a version in place:
// a self-copy always makes a new current version. So a key whose history
// holds a version to rewrap is replayed: every version, oldest first, is
// copied onto the key (delete markers made again), under the target CMK,
// so that the copies keep the history's order and its newest is current
// again; then, once the key is seen to hold exactly the replayed versions
// above the old ones, the old versions are deleted. Readers of the key may
// see an older version as current while a replay runs, and the versions
// get new ids and dates (README, "Rewrapping versioned buckets").

// checkVersioning refuses AllVersions on a bucket whose versioning is not
// enabled: there a self-copy replaces the object, and deleting its old
// version (the "null" one) would delete the object itself.
func (r *run) checkVersioning(ctx context.Context) error {
	if !r.cfg.AllVersions {
		return nil
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

// errInterleaved means a client wrote to the key during its replay.
var errInterleaved = errors.New("written to during the replay: the old versions are kept beside the copies")

// errHasPlaintext means a key's history holds a version s3seal did not
// write, which it cannot copy: the key is left as it is.
var errHasPlaintext = errors.New("a version not written through s3seal (--encrypt-plaintext encrypts it)")

// history rewraps the versions of one key (newest first, as listed).
func (r *run) history(ctx context.Context, versions []minio.ObjectInfo) []Result {
	oldest := slices.Clone(versions)
	slices.Reverse(oldest)
	plan, needed, err := r.planHistory(ctx, oldest)
	if err != nil || !needed || r.cfg.DryRun {
		return plan.results(err, needed && r.cfg.DryRun)
	}
	for i, v := range oldest {
		if err := r.replay(ctx, v, plan[i]); err != nil {
			return plan.results(fmt.Errorf("replaying version %s: %w", v.VersionID, err), false)
		}
	}
	if err := r.checkReplayed(ctx, versions); err != nil {
		return plan.results(err, false)
	}
	for _, v := range versions {
		if err := r.cfg.S3.RemoveObject(ctx, r.cfg.Bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID}); err != nil {
			return plan.results(fmt.Errorf("copies made, but deleting the old version %s: %w", v.VersionID, err), false)
		}
	}
	return plan.results(nil, true)
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
		case err != nil:
			res = outcomeOf(res, Rewrapped, err)
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
// (re-wrapped even where it was up to date: the order needs every copy).
func (r *run) replay(ctx context.Context, v minio.ObjectInfo, s versionStep) error {
	switch {
	case s.marker:
		return r.cfg.S3.RemoveObject(ctx, r.cfg.Bucket, v.Key, minio.RemoveObjectOptions{})
	case s.act == Encrypted:
		return r.encrypt(ctx, v.Key, v.VersionID, s.st)
	}
	return r.rewrap(ctx, v.Key, v.VersionID, s.st)
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
