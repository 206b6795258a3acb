package main

// The embedded store: gofakes3 over a directory, served on a random
// loopback port inside the process and used as the upstream when
// S3SEAL_UPSTREAM_URL is unset. It is for first runs and demos: it keeps
// objects as plain files (ciphertext, since s3seal encrypts them), has no
// access control and does not check signatures.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// embeddedStore is a running gofakes3 server.
type embeddedStore struct {
	URL        *url.URL
	Credential credential // random per start: gofakes3 ignores it, but s3seal signs as it would upstream
	Region     string
	Dir        string
	srv        *http.Server
	done       chan struct{}
}

// startEmbeddedStore serves a multi-bucket store rooted at dir (created
// 0700; buckets under dir/buckets, object metadata under dir/metadata) on
// 127.0.0.1 with a random port.
func startEmbeddedStore(dir string, logger *slog.Logger) (*embeddedStore, error) {
	backend, err := newStoreBackend(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(storeLog{logger}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s := &embeddedStore{
		URL:        &url.URL{Scheme: "http", Host: ln.Addr().String()},
		Credential: generateCredential(),
		Region:     "us-east-1",
		Dir:        dir,
		srv: &http.Server{
			Handler:           faker.Server(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go s.serve(ln, logger)
	return s, nil
}

// newStoreBackend roots gofakes3's MultiBucket backend in dir. MultiBucket
// (unlike SingleBucket) lets clients create and delete buckets; it refuses
// a bare OsFs, hence the BasePathFs that also keeps it inside dir.
func newStoreBackend(dir string) (storeBackend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return storeBackend{}, err
	}
	osFs := afero.NewOsFs()
	if err := osFs.MkdirAll(abs, 0o700); err != nil {
		return storeBackend{}, err
	}
	b, err := s3afero.MultiBucket(afero.NewBasePathFs(osFs, abs))
	return storeBackend{MultiBucketBackend: b, tmpDir: abs}, err
}

// storeBackend fixes gofakes3's copy of an object onto itself: it streams
// the source file into PutObject, which truncates that very file first and
// so leaves an empty object. A self-copy is how an object is re-wrapped
// under a new CMK, so it must keep its bytes.
type storeBackend struct {
	*s3afero.MultiBucketBackend
	tmpDir string // beside buckets/ and metadata/, on the same disk
}

func (b storeBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	if srcBucket != dstBucket || srcKey != dstKey {
		return b.MultiBucketBackend.CopyObject(srcBucket, srcKey, dstBucket, dstKey, meta)
	}
	obj, err := b.GetObject(srcBucket, srcKey, nil)
	if err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	defer obj.Contents.Close()
	tmp, err := os.CreateTemp(b.tmpDir, ".copy-*")
	if err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, obj.Contents); err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	if _, err := b.PutObject(dstBucket, dstKey, meta, tmp, obj.Size, nil); err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	return gofakes3.CopyObjectResult{ETag: `"` + hex.EncodeToString(obj.Hash) + `"`, LastModified: gofakes3.NewContentTime(time.Now())}, nil
}

func (s *embeddedStore) serve(ln net.Listener, logger *slog.Logger) {
	defer close(s.done)
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		logger.Error("embedded store stopped", "err", err)
	}
}

// Close stops the store. It runs after the proxy has drained, so no request
// should still be in flight; the timeout only bounds a stuck one.
func (s *embeddedStore) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	return err
}

// storeLog routes gofakes3's log lines to slog at debug level (its errors
// at warn): they describe the store's view of requests that s3seal already
// logs.
type storeLog struct{ logger *slog.Logger }

func (l storeLog) Print(level gofakes3.LogLevel, v ...any) {
	lvl := slog.LevelDebug
	if level == gofakes3.LogErr {
		lvl = slog.LevelWarn
	}
	l.logger.Log(context.Background(), lvl, fmt.Sprint(v...), "component", "embedded-store")
}
