package proxy

import (
	"context"
	"io"

	"github.com/s3seal/s3seal/internal/store"
)

// maxResumes bounds how often the store reads of one client request may
// resume after a broken connection: enough to ride out a few resets, few
// enough that a store that keeps breaking them ends the read soon (the
// client's connection is then cut, never given a short body as complete).
const maxResumes = 3

// resumable makes body, which carries stored bytes [off, off+n) of o, resume
// from where it breaks (store.Client.Resume), within the request's budget.
// The bytes of a resumed answer are authenticated like any others by the
// decryption that reads them.
func (p *Proxy) resumable(ctx context.Context, o objRef, off, n int64, body io.ReadCloser) io.ReadCloser {
	op := opFrom(ctx)
	var budget *store.Resumes
	if obs, ok := ctx.Value(obsKey{}).(observation); ok {
		budget = obs.resumes
	}
	return p.store.Resume(ctx, o.Object, o.etag, off, n, body, budget, func(ok bool) { p.obs.ObserveResume(op, ok) })
}
