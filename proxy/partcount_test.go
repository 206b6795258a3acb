package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/internal/store"
)

// TestPartCountsWithoutETagMarks: on a store whose ETags carry no part
// count, sizes are learnt exactly from the store or the request is refused;
// never a size computed from a guessed count.
func TestPartCountsWithoutETagMarks(t *testing.T) {
	e := newLyingEnv(t)
	dropN := adversary.Lie{Kind: adversary.ETagParts, N: -1}
	tests := []struct {
		name    string
		lies    []adversary.Lie
		refused bool // the store cannot tell: every read is refused
	}{
		{"counts asked", []adversary.Lie{dropN}, false},
		{"partNumber ignored too", []adversary.Lie{dropN, {Kind: adversary.IgnorePartNumber}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.proxy.layouts, e.proxy.counts = newLayoutCache(), newPartCounts(false)
			e.liar.Set(tt.lies...)
			defer e.liar.Set()
			for _, key := range []string{"small", "mp"} {
				plain := e.plain(key)
				head := e.read(t, "HEAD", "/"+testBucket+"/"+key, nil)
				get := e.read(t, "GET", "/"+testBucket+"/"+key, nil)
				rng := e.read(t, "GET", "/"+testBucket+"/"+key, rangeHeader(100, 2*chunk))
				if tt.refused {
					for _, a := range []answer{head, get, rng} {
						if a.status != http.StatusBadGateway {
							t.Errorf("%s: %d, want 502 UnknownPartCount", key, a.status)
						}
					}
					if store.ErrorCode(get.body) != "UnknownPartCount" {
						t.Errorf("%s: %s", key, get.body)
					}
					continue
				}
				if head.status != http.StatusOK || head.header.Get("Content-Length") != fmt.Sprint(len(plain)) {
					t.Errorf("HEAD %s: %d, length %s, want %d", key, head.status, head.header.Get("Content-Length"), len(plain))
				}
				checkHonest(t, get, plain, 0, int64(len(plain)))
				checkHonest(t, rng, plain, 100, 2*chunk)
				if !get.complete || get.status != http.StatusOK {
					t.Errorf("GET %s: %d", key, get.status)
				}
			}
			list := e.read(t, "GET", "/"+testBucket+"?list-type=2", nil)
			for _, key := range []string{"small", "mp"} {
				want := fmt.Sprintf("<Key>%s</Key>", key)
				size := len(e.plain(key))
				if tt.refused {
					size = len(e.stored(t, key))
				}
				if !strings.Contains(string(list.body), fmt.Sprintf("<Size>%d</Size>", size)) || !strings.Contains(string(list.body), want) {
					t.Errorf("listing of %s: want size %d in\n%s", key, size, list.body)
				}
			}
		})
	}
}

// TestPartCountsLearnt: a store is taken to mark multipart ETags once it
// answered an upload s3seal completed so; then single-part reads cost no
// extra request. One that answered without the count keeps being asked.
func TestPartCountsLearnt(t *testing.T) {
	for _, marks := range []bool{true, false} {
		t.Run(fmt.Sprint("marks=", marks), func(t *testing.T) {
			e := newLyingEnv(t)
			e.proxy.counts = newPartCounts(false)
			if !marks {
				e.liar.Set(adversary.Lie{Kind: adversary.ETagParts, N: -1})
			}
			e.multipartPut(t, "mp2", [][]byte{randomBytes(chunk, 1), randomBytes(10, 2)})
			if got, want := e.proxy.counts.marked.Load(), map[bool]int32{true: etagsMarked, false: etagsUnmarked}[marks]; got != want {
				t.Fatalf("learnt %d, want %d", got, want)
			}
			before := partHeads(e.store)
			if a := e.read(t, "HEAD", "/"+testBucket+"/small", nil); a.status != http.StatusOK {
				t.Fatalf("HEAD: %d", a.status)
			}
			asked := partHeads(e.store) - before
			if marks != (asked == 0) {
				t.Errorf("%d part count requests for a single-part HEAD", asked)
			}
			if size := e.read(t, "HEAD", "/"+testBucket+"/mp2", nil).header.Get("Content-Length"); size != fmt.Sprint(chunk+10) {
				t.Errorf("size of mp2: %s", size)
			}
		})
	}
}

var _ = envelope.ChunkSize

// eachPart returns the first failure and starts nothing after it, and a
// parent context canceled before all parts ran is an error, never a
// success with parts missing.
func TestEachPart(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	err := eachPart(context.Background(), 10000, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 3 {
			return boom
		}
		<-ctx.Done() // siblings run until the failure cancels them
		return ctx.Err()
	})
	if !errors.Is(err, boom) || ran.Load() > 3+partHeadConcurrency {
		t.Errorf("eachPart: %v after %d parts", err, ran.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := eachPart(ctx, 5, func(context.Context, int) error { return nil }); err == nil {
		t.Error("a canceled eachPart succeeded")
	}
	var all atomic.Int32
	if err := eachPart(context.Background(), 100, func(context.Context, int) error { all.Add(1); return nil }); err != nil || all.Load() != 100 {
		t.Errorf("eachPart ran %d of 100: %v", all.Load(), err)
	}
}
