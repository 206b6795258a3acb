// Package testkms is the KMS-API server s3seal's tests run against, and the
// helpers tests use to reach it: local-kms's handlers
// (github.com/nsmithuk/local-kms) served on loopback only, plus the
// RotateKeyOnDemand operation that local-kms lacks and the ReEncrypt
// SourceKeyId check it skips.
//
// It exists because the upstream binary listens on every interface and only
// rotates keys yearly; tests need a KMS that never leaves the machine and can
// rotate when told. It is a test fixture, not a key service: local-kms keeps
// key material unencrypted in its database and logs request details.
//
// Tests call Endpoint (the server scripts/test started, or one of their
// own), CreateKey and Client; tests that stop the KMS call Start.
// cmd/s3seal-localkms is the same server as a process, which scripts/test
// starts.
package testkms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	lkms "github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/service"
)

// Region and AccountID are what every key ARN served here carries.
const (
	Region    = "us-east-1"
	AccountID = "111122223333"
)

// maxBody bounds a request body; KMS requests are a few KiB at most.
const maxBody = 1 << 20

// setConfig guards local-kms's package-level region and account: they are
// globals upstream, so concurrent New calls (parallel tests) must write them
// once, not race on them.
var setConfig sync.Once

// Server is an http.Handler serving the KMS API over one local-kms database.
type Server struct {
	db *data.Database
	// rotateMu serialises RotateKeyOnDemand's load-modify-save so two
	// concurrent rotations of one key cannot lose a backing key.
	rotateMu sync.Mutex
}

// New opens (or creates) the local-kms database in dataDir.
func New(dataDir string) (s *Server, err error) {
	if dataDir == "" {
		return nil, errors.New("testkms: data dir required")
	}
	setConfig.Do(func() {
		config.AWSRegion = Region
		config.AWSAccountId = AccountID
	})
	// data.NewDatabase panics when leveldb cannot open the directory (for
	// example when another process holds its lock); turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("testkms: open database %s: %v", dataDir, r)
		}
	}()
	return &Server{db: data.NewDatabase(dataDir)}, nil
}

// Close closes the database. The caller must have stopped serving first.
func (s *Server) Close() error {
	s.db.Close()
	return nil
}

// ServeHTTP answers RotateKeyOnDemand itself and hands every other request to
// local-kms.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	// local-kms slices ciphertext blobs without checking their length, so a
	// short or garbled blob panics inside its Decrypt/ReEncrypt handlers. AWS
	// answers InvalidCiphertextException there; do the same instead of
	// dropping the connection, which a client would read as an outage.
	defer func() {
		if rec := recover(); rec != nil {
			if rec == http.ErrAbortHandler {
				panic(rec)
			}
			switch target {
			case "TrentService.Decrypt", "TrentService.ReEncrypt":
				writeError(w, http.StatusBadRequest, "InvalidCiphertextException", "")
			default:
				writeError(w, http.StatusInternalServerError, "InternalFailureException", "internal error")
			}
		}
	}()
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		switch target {
		case "TrentService.RotateKeyOnDemand":
			s.rotateKeyOnDemand(w, r)
			return
		case "TrentService.ReEncrypt":
			if !s.checkReEncryptSource(w, r) {
				return
			}
		}
	}
	lkms.HandleRequest(w, r, s.db)
}

// checkReEncryptSource does the checks local-kms skips. It ignores
// ReEncrypt's SourceKeyId, so a ciphertext of another key would be
// re-encrypted where AWS answers IncorrectKeyException. It answers the error
// itself and returns false, or restores the body for local-kms and returns
// true.
func (s *Server) checkReEncryptSource(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "unable to read request body")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		SourceKeyId    *string
		CiphertextBlob []byte
	}
	// Leave malformed bodies and missing blobs to local-kms's own answers.
	if json.Unmarshal(body, &in) != nil || len(in.CiphertextBlob) == 0 {
		return true
	}
	// local-kms looks up the key named in an unparseable blob anyway, finds
	// none, and says NotFoundException; AWS says the ciphertext is invalid.
	ident, _, _, ok := service.UnpackCiphertextBlob(in.CiphertextBlob)
	if !ok {
		writeError(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		return false
	}
	if in.SourceKeyId == nil || *in.SourceKeyId == "" {
		return true
	}
	arn, ok := s.resolveKeyArn(*in.SourceKeyId)
	if !ok {
		writeError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", *in.SourceKeyId))
		return false
	}
	if ident != arn {
		writeError(w, http.StatusBadRequest, "IncorrectKeyException",
			"The key ID in the request does not identify a CMK that can perform this operation.")
		return false
	}
	return true
}

// resolveKeyArn turns a key id, key ARN, alias name or alias ARN into the key
// ARN, as local-kms's own (unexported) lookup does; ok is false when there is
// no such key.
func (s *Server) resolveKeyArn(id string) (string, bool) {
	if strings.Contains(id, "alias/") {
		alias, err := s.db.LoadAlias(config.EnsureArn("", id))
		if err != nil || alias == nil {
			return "", false
		}
		id = alias.TargetKeyId
	}
	arn := config.EnsureArn("key/", id)
	if key, err := s.db.LoadKey(arn); err != nil || key == nil {
		return "", false
	}
	return arn, true
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	body := map[string]string{"__type": typ}
	if msg != "" {
		body["message"] = msg
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"__type":"InternalFailureException"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// rotateKeyOnDemand implements TrentService.RotateKeyOnDemand: it appends a
// new backing key to a symmetric AWS_KMS-origin key, after which new
// ciphertexts use it and old ones still decrypt with their recorded version.
func (s *Server) rotateKeyOnDemand(w http.ResponseWriter, r *http.Request) {
	var in struct{ KeyId *string }
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "unable to read request body")
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "unable to parse request body")
		return
	}
	if in.KeyId == nil || *in.KeyId == "" {
		writeError(w, http.StatusBadRequest, "ValidationException",
			"1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
		return
	}
	// AWS accepts only a key id or key ARN here, not an alias.
	if strings.HasPrefix(*in.KeyId, "alias/") || strings.Contains(*in.KeyId, ":alias/") {
		writeError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Invalid keyId '%s'", *in.KeyId))
		return
	}
	arn := config.EnsureArn("key/", *in.KeyId)

	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()

	key, err := s.db.LoadKey(arn)
	if err != nil || key == nil {
		writeError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", arn))
		return
	}
	aes, ok := key.(*cmk.AesKey)
	if !ok {
		writeError(w, http.StatusBadRequest, "UnsupportedOperationException",
			fmt.Sprintf("%s key spec is %s which is not valid for this operation.", arn, key.GetMetadata().KeySpec))
		return
	}
	md := aes.GetMetadata()
	if md.Origin == cmk.KeyOriginExternal {
		writeError(w, http.StatusBadRequest, "UnsupportedOperationException",
			fmt.Sprintf("%s origin is EXTERNAL which is not valid for this operation.", arn))
		return
	}
	if md.KeyState != cmk.KeyStateEnabled {
		// AWS refuses on-demand rotation of keys that are not enabled.
		if md.KeyState == cmk.KeyStateDisabled {
			writeError(w, http.StatusBadRequest, "DisabledException", fmt.Sprintf("%s is disabled.", arn))
		} else {
			writeError(w, http.StatusBadRequest, "KMSInvalidStateException",
				fmt.Sprintf("%s is %s.", arn, md.KeyState))
		}
		return
	}

	// RotateIfNeeded is the only way local-kms adds a backing key; make it due,
	// then put the schedule back so on-demand rotation leaves automatic rotation
	// (and GetKeyRotationStatus) as it was, as AWS does.
	next := aes.NextKeyRotation
	aes.NextKeyRotation = time.Now().Add(-time.Second)
	rotated := aes.RotateIfNeeded()
	aes.NextKeyRotation = next
	if !rotated {
		writeError(w, http.StatusInternalServerError, "KMSInternalException", "rotation did not happen")
		return
	}
	if err := s.db.SaveKey(aes); err != nil {
		writeError(w, http.StatusInternalServerError, "KMSInternalException", "unable to save key")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"KeyId": aes.GetArn()})
}

// start serves a new Server over dataDir on 127.0.0.1 at a free port. It
// returns the endpoint URL and a stop function that shuts the listener down
// and closes the database.
func start(dataDir string) (endpoint string, stop func() error, err error) {
	s, err := New(dataDir)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close()
		return "", nil, fmt.Errorf("testkms: listen: %w", err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	stop = func() error {
		// Shutdown lets in-flight requests finish before the database
		// closes under them; it drops idle keep-alive connections at once,
		// but waits 5 s for a connection a client opened and has not used
		// yet (net/http's StateNew rule): the bound must be longer.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err := hs.Shutdown(ctx)
		if err != nil {
			_ = hs.Close()
		}
		if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return "http://" + ln.Addr().String(), stop, nil
}
