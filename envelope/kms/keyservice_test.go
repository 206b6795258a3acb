package kms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/envelope/awskms"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"

	kmsserver "github.com/s3seal/s3seal/internal/kmsapi"
	"github.com/s3seal/s3seal/internal/testkms"
	"github.com/s3seal/s3seal/sigv4"
)

// keyAdmin manages CMKs behind a KeyService under test: the part of each
// implementation that is not KeyService, reduced to what the contract needs.
type keyAdmin interface {
	createKey(t *testing.T) string // returns an id usable as keyID
	createAlias(t *testing.T, alias, keyID string)
	disable(t *testing.T, keyID string)
	enable(t *testing.T, keyID string)
	rotate(t *testing.T, keyID string)
	scheduleDeletion(t *testing.T, keyID string)
}

// uniqueName returns a name no earlier run used, since an AWS-side endpoint
// from S3SEAL_TEST_KMS_ENDPOINT may keep keys and aliases between runs.
func uniqueName(prefix string) string {
	return prefix + strings.ToLower(rand.Text()[:12])
}

// randomKeyID returns a well-formed key id (a UUID v4) that names no key.
func randomKeyID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// runKeyServiceContract checks the behaviour every KeyService must share, so
// the proxy can treat AWS KMS and the keyring alike.
func runKeyServiceContract(t *testing.T, ks kms.KeyService, admin keyAdmin) {
	ctx := t.Context()
	encCtx := map[string]string{"bucket": "b", "key": "obj/1"}

	mustGenerate := func(t *testing.T, keyID string, c map[string]string) kms.DataKey {
		t.Helper()
		dk, err := ks.GenerateDataKey(ctx, keyID, c)
		if err != nil {
			t.Fatalf("GenerateDataKey(%s): %v", keyID, err)
		}
		if len(dk.Plaintext) != kms.DataKeySize {
			t.Fatalf("GenerateDataKey(%s): %d-byte key", keyID, len(dk.Plaintext))
		}
		if dk.KeyID == "" || len(dk.Ciphertext) == 0 {
			t.Fatalf("GenerateDataKey(%s): KeyID %q, %d-byte ciphertext", keyID, dk.KeyID, len(dk.Ciphertext))
		}
		return dk
	}
	mustDecrypt := func(t *testing.T, keyID string, blob []byte, c map[string]string, want []byte) {
		t.Helper()
		got, err := ks.Decrypt(ctx, keyID, blob, c)
		if err != nil {
			t.Fatalf("Decrypt(keyID %q): %v", keyID, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Decrypt(keyID %q) returned other bytes", keyID)
		}
	}
	wantErr := func(t *testing.T, what string, err, kind error) {
		t.Helper()
		if !errors.Is(err, kind) {
			t.Fatalf("%s: error %v, want %v", what, err, kind)
		}
		var ke *kms.KMSError
		if !errors.As(err, &ke) {
			t.Fatalf("%s: error %T, want *KMSError", what, err)
		}
		// Shown with -v: which service code each case maps from.
		t.Logf("%s: %v", what, err)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		key := admin.createKey(t)
		alias := uniqueName("alias/s3seal-test-")
		admin.createAlias(t, alias, key)

		dk := mustGenerate(t, key, encCtx)
		for _, id := range []string{key, dk.KeyID, alias, ""} {
			mustDecrypt(t, id, dk.Ciphertext, encCtx, dk.Plaintext)
		}
		// The canonical id is the same however the key was named.
		for _, id := range []string{dk.KeyID, alias} {
			dk2 := mustGenerate(t, id, encCtx)
			if dk2.KeyID != dk.KeyID {
				t.Fatalf("GenerateDataKey(%s).KeyID = %q, want %q", id, dk2.KeyID, dk.KeyID)
			}
			mustDecrypt(t, key, dk2.Ciphertext, encCtx, dk2.Plaintext)
		}
		// Map order is not part of the context.
		big := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
		dk3 := mustGenerate(t, key, big)
		mustDecrypt(t, "", dk3.Ciphertext, map[string]string{"e": "5", "d": "4", "c": "3", "b": "2", "a": "1"}, dk3.Plaintext)
		// No context at all is a context too.
		dk4 := mustGenerate(t, key, nil)
		mustDecrypt(t, key, dk4.Ciphertext, nil, dk4.Plaintext)
	})

	t.Run("DataKeysDiffer", func(t *testing.T) {
		key := admin.createKey(t)
		a, b := mustGenerate(t, key, encCtx), mustGenerate(t, key, encCtx)
		if bytes.Equal(a.Plaintext, b.Plaintext) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
			t.Fatal("two data keys are equal")
		}
	})

	t.Run("WrongContext", func(t *testing.T) {
		key := admin.createKey(t)
		dk := mustGenerate(t, key, encCtx)
		for name, c := range map[string]map[string]string{
			"other value": {"bucket": "b", "key": "obj/2"},
			"extra pair":  {"bucket": "b", "key": "obj/1", "x": "y"},
			"one pair":    {"bucket": "b"},
			"missing":     nil,
		} {
			_, err := ks.Decrypt(ctx, key, dk.Ciphertext, c)
			wantErr(t, name, err, kms.ErrInvalidCiphertext)
		}
		// And the other way round: made without context, opened with one.
		dk2 := mustGenerate(t, key, nil)
		_, err := ks.Decrypt(ctx, "", dk2.Ciphertext, encCtx)
		wantErr(t, "context added", err, kms.ErrInvalidCiphertext)
	})

	t.Run("Tampered", func(t *testing.T) {
		key := admin.createKey(t)
		dk := mustGenerate(t, key, encCtx)
		n := len(dk.Ciphertext)
		flipLast := bytes.Clone(dk.Ciphertext)
		flipLast[n-1] ^= 1
		flipMid := bytes.Clone(dk.Ciphertext)
		flipMid[n-20] ^= 0x80
		for name, blob := range map[string][]byte{
			"last byte":   flipLast,
			"middle byte": flipMid,
			"truncated":   dk.Ciphertext[:n-1],
			"very short":  dk.Ciphertext[:3],
		} {
			for _, id := range []string{key, ""} {
				_, err := ks.Decrypt(ctx, id, blob, encCtx)
				wantErr(t, fmt.Sprintf("Decrypt %s, keyID %q", name, id), err, kms.ErrInvalidCiphertext)
				_, err = ks.ReEncrypt(ctx, blob, id, encCtx, key, encCtx)
				wantErr(t, fmt.Sprintf("ReEncrypt %s, keyID %q", name, id), err, kms.ErrInvalidCiphertext)
			}
		}
	})

	t.Run("WrongKeyID", func(t *testing.T) {
		k1, k2 := admin.createKey(t), admin.createKey(t)
		dk := mustGenerate(t, k1, encCtx)
		_, err := ks.Decrypt(ctx, k2, dk.Ciphertext, encCtx)
		wantErr(t, "Decrypt with another key", err, kms.ErrInvalidCiphertext)
		_, err = ks.ReEncrypt(ctx, dk.Ciphertext, k2, encCtx, k2, encCtx)
		wantErr(t, "ReEncrypt with another source key", err, kms.ErrInvalidCiphertext)
	})

	t.Run("UnknownKey", func(t *testing.T) {
		for _, id := range []string{randomKeyID(), uniqueName("alias/s3seal-missing-")} {
			_, err := ks.GenerateDataKey(ctx, id, encCtx)
			wantErr(t, "GenerateDataKey "+id, err, kms.ErrKeyNotFound)
			_, err = ks.Encrypt(ctx, id, []byte("x"), encCtx)
			wantErr(t, "Encrypt "+id, err, kms.ErrKeyNotFound)
		}
		key := admin.createKey(t)
		dk := mustGenerate(t, key, encCtx)
		_, err := ks.Decrypt(ctx, randomKeyID(), dk.Ciphertext, encCtx)
		wantErr(t, "Decrypt naming an unknown key", err, kms.ErrKeyNotFound)
		_, err = ks.ReEncrypt(ctx, dk.Ciphertext, "", encCtx, randomKeyID(), encCtx)
		wantErr(t, "ReEncrypt to an unknown key", err, kms.ErrKeyNotFound)
	})

	t.Run("Disabled", func(t *testing.T) {
		key, other := admin.createKey(t), admin.createKey(t)
		dk := mustGenerate(t, key, encCtx)
		admin.disable(t, key)

		_, err := ks.GenerateDataKey(ctx, key, encCtx)
		wantErr(t, "GenerateDataKey", err, kms.ErrKeyDisabled)
		_, err = ks.Decrypt(ctx, key, dk.Ciphertext, encCtx)
		wantErr(t, "Decrypt", err, kms.ErrKeyDisabled)
		_, err = ks.Encrypt(ctx, key, []byte("x"), encCtx)
		wantErr(t, "Encrypt", err, kms.ErrKeyDisabled)
		_, err = ks.ReEncrypt(ctx, dk.Ciphertext, key, encCtx, other, encCtx)
		wantErr(t, "ReEncrypt from", err, kms.ErrKeyDisabled)
		dk2 := mustGenerate(t, other, encCtx)
		_, err = ks.ReEncrypt(ctx, dk2.Ciphertext, other, encCtx, key, encCtx)
		wantErr(t, "ReEncrypt to", err, kms.ErrKeyDisabled)

		admin.enable(t, key)
		mustDecrypt(t, key, dk.Ciphertext, encCtx, dk.Plaintext)
		dk3 := mustGenerate(t, key, encCtx)
		mustDecrypt(t, "", dk3.Ciphertext, encCtx, dk3.Plaintext)
	})

	t.Run("PendingDeletion", func(t *testing.T) {
		key := admin.createKey(t)
		dk := mustGenerate(t, key, encCtx)
		admin.scheduleDeletion(t, key)
		_, err := ks.GenerateDataKey(ctx, key, encCtx)
		wantErr(t, "GenerateDataKey", err, kms.ErrKeyDisabled)
		_, err = ks.Decrypt(ctx, key, dk.Ciphertext, encCtx)
		wantErr(t, "Decrypt", err, kms.ErrKeyDisabled)
		_, err = ks.Encrypt(ctx, key, []byte("x"), encCtx)
		wantErr(t, "Encrypt", err, kms.ErrKeyDisabled)
	})

	t.Run("Rotation", func(t *testing.T) {
		key := admin.createKey(t)
		before := mustGenerate(t, key, encCtx)
		wBefore, err := ks.Encrypt(ctx, key, []byte("direct before"), encCtx)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		admin.rotate(t, key)
		after := mustGenerate(t, key, encCtx)
		if after.KeyID != before.KeyID {
			t.Fatalf("KeyID changed on rotation: %q -> %q", before.KeyID, after.KeyID)
		}
		admin.rotate(t, key)
		for _, id := range []string{key, ""} {
			mustDecrypt(t, id, before.Ciphertext, encCtx, before.Plaintext)
			mustDecrypt(t, id, after.Ciphertext, encCtx, after.Plaintext)
			mustDecrypt(t, id, wBefore.Ciphertext, encCtx, []byte("direct before"))
		}
	})

	t.Run("ReEncrypt", func(t *testing.T) {
		k1, k2 := admin.createKey(t), admin.createKey(t)
		newCtx := map[string]string{"bucket": "b2", "key": "moved"}
		canon2 := mustGenerate(t, k2, nil).KeyID
		dk := mustGenerate(t, k1, encCtx)

		for _, src := range []string{k1, dk.KeyID, ""} {
			w, err := ks.ReEncrypt(ctx, dk.Ciphertext, src, encCtx, k2, newCtx)
			if err != nil {
				t.Fatalf("ReEncrypt(src %q): %v", src, err)
			}
			if w.KeyID != canon2 {
				t.Fatalf("ReEncrypt KeyID = %q, want %q", w.KeyID, canon2)
			}
			mustDecrypt(t, k2, w.Ciphertext, newCtx, dk.Plaintext)
			mustDecrypt(t, "", w.Ciphertext, newCtx, dk.Plaintext)
			_, err = ks.Decrypt(ctx, "", w.Ciphertext, encCtx)
			wantErr(t, "old context on the new blob", err, kms.ErrInvalidCiphertext)
			_, err = ks.Decrypt(ctx, k1, w.Ciphertext, newCtx)
			wantErr(t, "old key on the new blob", err, kms.ErrInvalidCiphertext)
		}
		_, err := ks.ReEncrypt(ctx, dk.Ciphertext, k1, newCtx, k2, newCtx)
		wantErr(t, "ReEncrypt with a wrong source context", err, kms.ErrInvalidCiphertext)
		// The original blob is untouched.
		mustDecrypt(t, k1, dk.Ciphertext, encCtx, dk.Plaintext)
	})

	t.Run("ResolveKey", func(t *testing.T) {
		r, ok := ks.(kms.KeyResolver)
		if !ok {
			t.Fatalf("%T is not a KeyResolver", ks)
		}
		key, other := admin.createKey(t), admin.createKey(t)
		alias := uniqueName("alias/s3seal-test-")
		admin.createAlias(t, alias, key)
		dk := mustGenerate(t, alias, encCtx)
		// Whatever names the key, its identities include the KeyID the
		// service wraps under: that is what object metadata holds.
		for _, id := range []string{key, alias, dk.KeyID} {
			ids, err := r.ResolveKey(ctx, id)
			if err != nil {
				t.Fatalf("ResolveKey(%s): %v", id, err)
			}
			if !slices.Contains(ids, dk.KeyID) || slices.Contains(ids, "") {
				t.Fatalf("ResolveKey(%s) = %q, want it to hold %q and no empty id", id, ids, dk.KeyID)
			}
		}
		for _, id := range []string{randomKeyID(), uniqueName("alias/s3seal-missing-")} {
			_, err := r.ResolveKey(ctx, id)
			wantErr(t, "ResolveKey "+id, err, kms.ErrKeyNotFound)
		}
		// The allow-list admits what the listed alias wraps under, nothing else.
		list := kms.NewAllowList(r, alias)
		if err := list.Resolve(ctx); err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if err := list.Check(ctx, dk.KeyID); err != nil {
			t.Fatalf("Check(%s): %v", dk.KeyID, err)
		}
		if err := list.Check(ctx, mustGenerate(t, other, encCtx).KeyID); !errors.Is(err, kms.ErrKeyNotAllowed) {
			t.Fatalf("Check of another key: %v, want ErrKeyNotAllowed", err)
		}
		// A disabled key still resolves: its objects fail as disabled, not as unlisted.
		admin.disable(t, key)
		if _, err := r.ResolveKey(ctx, alias); err != nil {
			t.Fatalf("ResolveKey of a disabled key: %v", err)
		}
	})

	t.Run("Encrypt", func(t *testing.T) {
		key := admin.createKey(t)
		for _, n := range []int{1, kms.MaxEncryptPlaintext} {
			pt := make([]byte, n)
			rand.Read(pt)
			w, err := ks.Encrypt(ctx, key, pt, encCtx)
			if err != nil {
				t.Fatalf("Encrypt(%d bytes): %v", n, err)
			}
			if w.KeyID == "" {
				t.Fatalf("Encrypt(%d bytes): empty KeyID", n)
			}
			mustDecrypt(t, key, w.Ciphertext, encCtx, pt)
			mustDecrypt(t, "", w.Ciphertext, encCtx, pt)
		}
		const secret = "SECRETPLAINTEXT"
		for _, n := range []int{0, kms.MaxEncryptPlaintext + 1} {
			pt := []byte(strings.Repeat(secret, n/len(secret)+1)[:n])
			_, err := ks.Encrypt(ctx, key, pt, encCtx)
			wantErr(t, fmt.Sprintf("Encrypt(%d bytes)", n), err, kms.ErrInvalidKMSRequest)
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("Encrypt(%d bytes) error text carries the plaintext: %q", n, err)
			}
		}
	})
}

// adminDone fails the test if a keyAdmin operation op failed.
func adminDone(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

// awsAdmin manages keys through the raw KMS API of the server at endpoint,
// with a client of its own.
type awsAdmin struct {
	endpoint string
	c        *kmsapi.Client
}

func newAWSAdmin(t *testing.T, endpoint string) awsAdmin {
	t.Helper()
	return awsAdmin{endpoint: endpoint, c: testkms.Client(t, endpoint)}
}

func (a awsAdmin) createKey(t *testing.T) string {
	t.Helper()
	return testkms.CreateKey(t, a.endpoint)
}

func (a awsAdmin) createAlias(t *testing.T, alias, keyID string) {
	t.Helper()
	_, err := a.c.CreateAlias(t.Context(), &kmsapi.CreateAliasInput{AliasName: &alias, TargetKeyId: &keyID})
	adminDone(t, "CreateAlias", err)
}

func (a awsAdmin) disable(t *testing.T, keyID string) {
	t.Helper()
	_, err := a.c.DisableKey(t.Context(), &kmsapi.DisableKeyInput{KeyId: &keyID})
	adminDone(t, "DisableKey", err)
}

func (a awsAdmin) enable(t *testing.T, keyID string) {
	t.Helper()
	_, err := a.c.EnableKey(t.Context(), &kmsapi.EnableKeyInput{KeyId: &keyID})
	adminDone(t, "EnableKey", err)
}

func (a awsAdmin) rotate(t *testing.T, keyID string) {
	t.Helper()
	_, err := a.c.RotateKeyOnDemand(t.Context(), &kmsapi.RotateKeyOnDemandInput{KeyId: &keyID})
	adminDone(t, "RotateKeyOnDemand", err)
}

func (a awsAdmin) scheduleDeletion(t *testing.T, keyID string) {
	t.Helper()
	_, err := a.c.ScheduleKeyDeletion(t.Context(), &kmsapi.ScheduleKeyDeletionInput{KeyId: &keyID, PendingWindowInDays: aws.Int32(7)})
	adminDone(t, "ScheduleKeyDeletion", err)
}

// testAWSKMS connects to endpoint the way the proxy would, with test credentials.
func testAWSKMS(t *testing.T, endpoint string, optFns ...func(*config.LoadOptions) error) *awskms.Service {
	t.Helper()
	opts := append([]func(*config.LoadOptions) error{
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	}, optFns...)
	ks, err := awskms.Load(t.Context(), awskms.Config{Region: testkms.Region, Endpoint: endpoint}, opts...)
	if err != nil {
		t.Fatalf("awskms.Load: %v", err)
	}
	return ks
}

func TestKeyServiceAWSKMS(t *testing.T) {
	endpoint := testkms.Endpoint(t)
	ks := testAWSKMS(t, endpoint)
	runKeyServiceContract(t, ks, newAWSAdmin(t, endpoint))
}

// allowAll authorizes everything a signed-in client asks.
type allowAll struct{}

func (allowAll) Authorize(context.Context, string, string, string) (string, error) {
	return "contract test", nil
}

// TestKeyServiceKMSAPI runs the AWS provider against s3seal's own KMS API
// over a keyring, as a second s3seal would use the first's: the API must
// behave as AWS KMS does wherever the contract looks. The server checks
// signatures with the pair testAWSKMS and newAWSAdmin sign with.
func TestKeyServiceKMSAPI(t *testing.T) {
	ring, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatalf("keyring.Open: %v", err)
	}
	h, err := kmsserver.New(kmsserver.Config{
		Keyring:    ring,
		Auth:       &sigv4.Verifier{Credentials: sigv4.StaticCredentials{"test": "test"}, Service: "kms"},
		Authorizer: allowAll{},
		Region:     testkms.Region,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("kmsserver.New: %v", err)
	}
	srv := httptest.NewServer(h) // on 127.0.0.1
	t.Cleanup(srv.Close)
	runKeyServiceContract(t, testAWSKMS(t, srv.URL), newAWSAdmin(t, srv.URL))
}

// keyringAdmin manages keys through the keyring's own API.
type keyringAdmin struct{ k *keyring.Keyring }

func (a keyringAdmin) createKey(t *testing.T) string {
	t.Helper()
	info, err := a.k.CreateKey("s3seal contract test")
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return info.ID
}

func (a keyringAdmin) createAlias(t *testing.T, alias, keyID string) {
	t.Helper()
	adminDone(t, "CreateAlias", a.k.CreateAlias(alias, keyID))
}

func (a keyringAdmin) disable(t *testing.T, keyID string) {
	t.Helper()
	adminDone(t, "DisableKey", a.k.DisableKey(keyID))
}

func (a keyringAdmin) enable(t *testing.T, keyID string) {
	t.Helper()
	adminDone(t, "EnableKey", a.k.EnableKey(keyID))
}

func (a keyringAdmin) rotate(t *testing.T, keyID string) {
	t.Helper()
	_, err := a.k.RotateKey(keyID)
	adminDone(t, "RotateKey", err)
}

func (a keyringAdmin) scheduleDeletion(t *testing.T, keyID string) {
	t.Helper()
	_, err := a.k.ScheduleKeyDeletion(keyID, 7)
	adminDone(t, "ScheduleKeyDeletion", err)
}

func TestKeyServiceKeyring(t *testing.T) {
	k, err := keyring.Open(filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatalf("keyring.Open: %v", err)
	}
	runKeyServiceContract(t, k, keyringAdmin{k})
}

// An unreachable KMS is ErrKMSUnavailable, refused, naming the endpoint.
func TestAWSKMSUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	ks := testAWSKMS(t, endpoint, config.WithRetryMaxAttempts(1))

	_, err = ks.GenerateDataKey(t.Context(), randomKeyID(), nil)
	var ke *kms.KMSError
	if !errors.Is(err, kms.ErrKMSUnavailable) || !errors.As(err, &ke) || ke.Reason != kms.ReasonRefused || ke.Service != "key service "+endpoint {
		t.Fatalf("GenerateDataKey: %v, want ErrKMSUnavailable, refused, at %s", err, endpoint)
	}

	cctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = ks.Decrypt(cctx, "", []byte("blob"), nil)
	if !errors.Is(err, kms.ErrKMSUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Decrypt with a canceled context: %v, want ErrKMSUnavailable and context.Canceled", err)
	}

	dctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-dctx.Done()
	_, err = ks.Encrypt(dctx, randomKeyID(), []byte("x"), nil)
	if !errors.Is(err, kms.ErrKMSUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Encrypt past its deadline: %v, want ErrKMSUnavailable and context.DeadlineExceeded", err)
	}

	_, err = ks.ResolveKey(t.Context(), "alias/s3seal")
	if !errors.Is(err, kms.ErrKMSUnavailable) || !errors.As(err, &ke) || ke.Reason != kms.ReasonRefused {
		t.Fatalf("ResolveKey: %v, want ErrKMSUnavailable, refused", err)
	}
}

func TestAWSKMSLoadConfig(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:4599", "ftp://x", "http://", "::bad"} {
		if _, err := awskms.Load(t.Context(), awskms.Config{Region: "us-east-1", Endpoint: ep}); err == nil {
			t.Errorf("awskms.Load(endpoint %q) succeeded", ep)
		}
	}
	// With no region anywhere, awskms.Load says so up front.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := awskms.Load(t.Context(), awskms.Config{}); err == nil {
		t.Error("awskms.Load without a region succeeded")
	}
}
