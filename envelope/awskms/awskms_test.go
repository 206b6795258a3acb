package awskms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/kms"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fakeKMS answers every call with err (when set) and records what it was asked.
type fakeKMS struct {
	err         error
	keyState    types.KeyState // DescribeKey's answer; "" makes DescribeKey fail
	describeErr error          // DescribeKey's failure, when set
	noMetadata  bool           // DescribeKey answers without KeyMetadata
	plain       []byte         // GenerateDataKey's plaintext

	described []string
	decryptIn *kmsapi.DecryptInput
	reencIn   *kmsapi.ReEncryptInput
	genIn     *kmsapi.GenerateDataKeyInput
	encIn     *kmsapi.EncryptInput
}

const (
	fakeKeyID = "fake"
	fakeARN   = "arn:aws:kms:us-east-1:111122223333:key/" + fakeKeyID
)

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kmsapi.GenerateDataKeyInput, _ ...func(*kmsapi.Options)) (*kmsapi.GenerateDataKeyOutput, error) {
	f.genIn = in
	if f.err != nil {
		return nil, f.err
	}
	arn := fakeARN
	return &kmsapi.GenerateDataKeyOutput{KeyId: &arn, Plaintext: f.plain, CiphertextBlob: []byte("blob")}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kmsapi.DecryptInput, _ ...func(*kmsapi.Options)) (*kmsapi.DecryptOutput, error) {
	f.decryptIn = in
	if f.err != nil {
		return nil, f.err
	}
	return &kmsapi.DecryptOutput{Plaintext: []byte("pt")}, nil
}

func (f *fakeKMS) ReEncrypt(_ context.Context, in *kmsapi.ReEncryptInput, _ ...func(*kmsapi.Options)) (*kmsapi.ReEncryptOutput, error) {
	f.reencIn = in
	if f.err != nil {
		return nil, f.err
	}
	arn := fakeARN
	return &kmsapi.ReEncryptOutput{KeyId: &arn, CiphertextBlob: []byte("blob2")}, nil
}

func (f *fakeKMS) Encrypt(_ context.Context, in *kmsapi.EncryptInput, _ ...func(*kmsapi.Options)) (*kmsapi.EncryptOutput, error) {
	f.encIn = in
	if f.err != nil {
		return nil, f.err
	}
	arn := fakeARN
	return &kmsapi.EncryptOutput{KeyId: &arn, CiphertextBlob: []byte("blob3")}, nil
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kmsapi.DescribeKeyInput, _ ...func(*kmsapi.Options)) (*kmsapi.DescribeKeyOutput, error) {
	f.described = append(f.described, *in.KeyId)
	switch {
	case f.describeErr != nil:
		return nil, f.describeErr
	case f.keyState == "":
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException"}
	case f.noMetadata:
		return &kmsapi.DescribeKeyOutput{}, nil
	}
	id, arn := fakeKeyID, fakeARN
	return &kmsapi.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{KeyId: &id, Arn: &arn, KeyState: f.keyState}}, nil
}

// apiErr builds the error chain the SDK returns for a KMS error answer:
// operation error > response error (with HTTP status) > API error.
func apiErr(status int, code, msg string) error {
	return &smithy.OperationError{
		ServiceID:     "KMS",
		OperationName: "Op",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      &smithy.GenericAPIError{Code: code, Message: msg},
			},
			RequestID: "req",
		},
	}
}

const secret = "SECRETPLAINTEXT"

func TestAWSKMSErrorMapping(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name string
		err  error
		kind error
		code string
		// cause, when set, must be reachable with errors.Is.
		cause error
	}{
		{"not found", apiErr(400, "NotFoundException", "Key 'x' does not exist"), kms.ErrKeyNotFound, "NotFoundException", nil},
		{"disabled", apiErr(400, "DisabledException", secret), kms.ErrKeyDisabled, "DisabledException", nil},
		{"invalid state", apiErr(400, "KMSInvalidStateException", secret), kms.ErrKeyDisabled, "KMSInvalidStateException", nil},
		{"access denied", apiErr(400, "AccessDeniedException", secret), kms.ErrAccessDenied, "AccessDeniedException", nil},
		{"unknown access key", apiErr(400, "UnrecognizedClientException", secret), kms.ErrAccessDenied, "UnrecognizedClientException", nil},
		{"invalid ciphertext", apiErr(400, "InvalidCiphertextException", secret), kms.ErrInvalidCiphertext, "InvalidCiphertextException", nil},
		{"incorrect key", apiErr(400, "IncorrectKeyException", secret), kms.ErrInvalidCiphertext, "IncorrectKeyException", nil},
		// A CMK that is not a symmetric encryption key: s3seal's key is
		// misconfigured, for Decrypt too (no damaged object: 500, not 502).
		{"invalid key usage", apiErr(400, "InvalidKeyUsageException", secret), kms.ErrInvalidKMSRequest, "InvalidKeyUsageException", nil},
		{"throttling", apiErr(400, "ThrottlingException", secret), kms.ErrKMSUnavailable, "ThrottlingException", nil},
		// A resource quota, not the request rate: retrying does not help.
		{"limit exceeded", apiErr(400, "LimitExceededException", secret), kms.ErrInvalidKMSRequest, "LimitExceededException", nil},
		{"kms internal", apiErr(500, "KMSInternalException", secret), kms.ErrKMSUnavailable, "KMSInternalException", nil},
		{"dependency timeout", apiErr(503, "DependencyTimeoutException", secret), kms.ErrKMSUnavailable, "DependencyTimeoutException", nil},
		{"key unavailable", apiErr(500, "KeyUnavailableException", secret), kms.ErrKMSUnavailable, "KeyUnavailableException", nil},
		{"unknown 5xx", apiErr(502, "SomethingNew", secret), kms.ErrKMSUnavailable, "SomethingNew", nil},
		{"unknown 4xx", apiErr(400, "SomethingNew", secret), kms.ErrInvalidKMSRequest, "SomethingNew", nil},
		{"validation", apiErr(400, "ValidationException",
			"1 validation error detected: Value '"+secret+"' at 'Plaintext' failed to satisfy constraint"),
			kms.ErrInvalidKMSRequest, "ValidationException", nil},
		{"serialization", apiErr(400, "SerializationException", secret), kms.ErrInvalidKMSRequest, "SerializationException", nil},
		{"grant token", apiErr(400, "InvalidGrantTokenException", secret), kms.ErrInvalidKMSRequest, "InvalidGrantTokenException", nil},
		{"sdk validation", &smithy.OperationError{ServiceID: "KMS", OperationName: "Op",
			Err: smithy.InvalidParamsError{Context: "Input " + secret}}, kms.ErrInvalidKMSRequest, "", nil},
		{"connection refused", &smithy.OperationError{ServiceID: "KMS", OperationName: "Op",
			Err: fmt.Errorf("send request %s: %w", secret, opErr)}, kms.ErrKMSUnavailable, "", nil},
		{"canceled", &smithy.OperationError{ServiceID: "KMS", OperationName: "Op",
			Err: fmt.Errorf("%s: %w", secret, context.Canceled)}, kms.ErrKMSUnavailable, "", context.Canceled},
		{"deadline", fmt.Errorf("%s: %w", secret, context.DeadlineExceeded), kms.ErrKMSUnavailable, "", context.DeadlineExceeded},
		// A response the SDK cannot parse may quote the body: keep nothing of it.
		{"deserialization", &smithy.DeserializationError{Err: errors.New(secret)}, kms.ErrKMSUnavailable, "", nil},
	}
	// The reason of each case that has one, by name.
	reasons := map[string]kms.Reason{
		"not found": kms.ReasonNotFound, "disabled": kms.ReasonDisabled, "invalid state": kms.ReasonPendingDeletion,
		"access denied": kms.ReasonDenied, "unknown access key": kms.ReasonDenied,
		"throttling": kms.ReasonThrottled, "limit exceeded": kms.ReasonQuota, "invalid key usage": kms.ReasonKeyUsage,
		"connection refused": kms.ReasonRefused, "deadline": kms.ReasonTimeout,
	}
	ops := []struct {
		name string
		call func(*Service) error
	}{
		{"GenerateDataKey", func(a *Service) error { _, err := a.GenerateDataKey(t.Context(), "k", nil); return err }},
		{"Decrypt", func(a *Service) error { _, err := a.Decrypt(t.Context(), "k", []byte("c"), nil); return err }},
		{"ReEncrypt", func(a *Service) error {
			_, err := a.ReEncrypt(t.Context(), []byte("c"), "k", nil, "k2", nil)
			return err
		}},
		{"Encrypt", func(a *Service) error { _, err := a.Encrypt(t.Context(), "k", []byte("p"), nil); return err }},
		{"DescribeKey", func(a *Service) error { _, err := a.ResolveKey(t.Context(), "k"); return err }},
	}
	for _, tc := range cases {
		for _, op := range ops {
			t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				// keyState Enabled: an AccessDenied on a usable key stays AccessDenied.
				f := &fakeKMS{err: tc.err, keyState: types.KeyStateEnabled}
				if op.name == "DescribeKey" {
					f.describeErr = tc.err
				}
				a := New(f)
				err := op.call(a)
				var ke *kms.KMSError
				if !errors.As(err, &ke) {
					t.Fatalf("error %T %v, want *KMSError", err, err)
				}
				if !errors.Is(err, tc.kind) {
					t.Errorf("error %v, want kind %v", err, tc.kind)
				}
				if ke.Op != op.name || ke.Code != tc.code {
					t.Errorf("Op, Code = %q, %q; want %q, %q", ke.Op, ke.Code, op.name, tc.code)
				}
				if tc.cause != nil && !errors.Is(err, tc.cause) {
					t.Errorf("error %v does not wrap %v", err, tc.cause)
				}
				if ke.Reason != reasons[tc.name] {
					t.Errorf("Reason %q, want %q", ke.Reason, reasons[tc.name])
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error text %q leaks the service message", err)
				}
			})
		}
	}
}

// local-kms says AccessDeniedException where AWS says DisabledException; the
// key state decides.
func TestAWSKMSAccessDeniedKeyState(t *testing.T) {
	denied := apiErr(400, "AccessDeniedException", secret)
	cases := []struct {
		state types.KeyState
		kind  error
	}{
		{types.KeyStateDisabled, kms.ErrKeyDisabled},
		{types.KeyStatePendingDeletion, kms.ErrKeyDisabled},
		{types.KeyStatePendingReplicaDeletion, kms.ErrKeyDisabled},
		{types.KeyStateEnabled, kms.ErrAccessDenied},
		{"", kms.ErrAccessDenied}, // DescribeKey itself denied
	}
	for _, tc := range cases {
		t.Run(string(tc.state), func(t *testing.T) {
			f := &fakeKMS{err: denied, keyState: tc.state}
			a := New(f)
			if _, err := a.Decrypt(t.Context(), "k", []byte("c"), nil); !errors.Is(err, tc.kind) {
				t.Errorf("Decrypt: %v, want %v", err, tc.kind)
			}
			if _, err := a.ReEncrypt(t.Context(), []byte("c"), "", nil, "k2", nil); !errors.Is(err, tc.kind) {
				t.Errorf("ReEncrypt: %v, want %v", err, tc.kind)
			}
			if got, want := strings.Join(f.described, ","), "k,k2"; got != want {
				t.Errorf("described %q, want %q", got, want)
			}
			// Without a key id there is nothing to ask about.
			f.described = nil
			if _, err := a.Decrypt(t.Context(), "", []byte("c"), nil); !errors.Is(err, kms.ErrAccessDenied) {
				t.Errorf("Decrypt without key id: %v, want ErrAccessDenied", err)
			}
			// GenerateDataKey's AccessDenied is AWS's own answer, not a state in disguise.
			if _, err := a.GenerateDataKey(t.Context(), "k", nil); !errors.Is(err, kms.ErrAccessDenied) {
				t.Errorf("GenerateDataKey: %v, want ErrAccessDenied", err)
			}
			if len(f.described) != 0 {
				t.Errorf("described %q, want nothing", f.described)
			}
		})
	}
}

func TestAWSKMSRequests(t *testing.T) {
	ctx := t.Context()
	encCtx := map[string]string{"a": "b"}
	f := &fakeKMS{plain: make([]byte, kms.DataKeySize)}
	a := New(f)

	dk, err := a.GenerateDataKey(ctx, "alias/x", encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if *f.genIn.KeyId != "alias/x" || f.genIn.KeySpec != types.DataKeySpecAes256 || f.genIn.NumberOfBytes != nil || f.genIn.EncryptionContext["a"] != "b" {
		t.Errorf("GenerateDataKey input %+v", f.genIn)
	}
	if dk.KeyID != fakeARN || len(dk.Plaintext) != kms.DataKeySize {
		t.Errorf("data key %q, %d bytes", dk.KeyID, len(dk.Plaintext))
	}

	if _, err := a.Decrypt(ctx, "", []byte("c"), encCtx); err != nil {
		t.Fatal(err)
	}
	if f.decryptIn.KeyId != nil || f.decryptIn.EncryptionContext["a"] != "b" {
		t.Errorf("Decrypt input %+v", f.decryptIn)
	}
	if _, err := a.Decrypt(ctx, "k", []byte("c"), encCtx); err != nil {
		t.Fatal(err)
	}
	if f.decryptIn.KeyId == nil || *f.decryptIn.KeyId != "k" {
		t.Errorf("Decrypt KeyId %v", f.decryptIn.KeyId)
	}

	w, err := a.ReEncrypt(ctx, []byte("c"), "", encCtx, "k2", map[string]string{"c": "d"})
	if err != nil {
		t.Fatal(err)
	}
	in := f.reencIn
	if in.SourceKeyId != nil || *in.DestinationKeyId != "k2" || in.SourceEncryptionContext["a"] != "b" || in.DestinationEncryptionContext["c"] != "d" {
		t.Errorf("ReEncrypt input %+v", in)
	}
	if w.KeyID != fakeARN || string(w.Ciphertext) != "blob2" {
		t.Errorf("ReEncrypt = %+v", w)
	}
	if _, err := a.ReEncrypt(ctx, []byte("c"), "k", encCtx, "k2", nil); err != nil {
		t.Fatal(err)
	}
	if f.reencIn.SourceKeyId == nil || *f.reencIn.SourceKeyId != "k" {
		t.Errorf("ReEncrypt SourceKeyId %v", f.reencIn.SourceKeyId)
	}

	// Out-of-range plaintexts never reach KMS, whose error would quote them.
	for _, n := range []int{0, kms.MaxEncryptPlaintext + 1} {
		f.encIn = nil
		pt := []byte(strings.Repeat(secret, n/len(secret)+1)[:n])
		_, err := a.Encrypt(ctx, "k", pt, nil)
		if !errors.Is(err, kms.ErrInvalidKMSRequest) || f.encIn != nil {
			t.Errorf("Encrypt(%d bytes): %v, sent %v", n, err, f.encIn != nil)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("Encrypt error %q leaks plaintext", err)
		}
	}

	// A wrong-sized data key is refused rather than passed on.
	f.plain = make([]byte, 16)
	if _, err := a.GenerateDataKey(ctx, "k", nil); !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Errorf("16-byte data key: %v, want ErrKMSUnavailable", err)
	}
}

func TestAWSKMSResolveKey(t *testing.T) {
	f := &fakeKMS{keyState: types.KeyStateDisabled} // a disabled key still resolves
	a := New(f)
	ids, err := a.ResolveKey(t.Context(), "alias/x")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ids, ","), fakeKeyID+","+fakeARN; got != want {
		t.Errorf("ResolveKey = %q, want %q", got, want)
	}
	if got := strings.Join(f.described, ","); got != "alias/x" {
		t.Errorf("described %q, want alias/x", got)
	}
	// An answer without the key's names cannot be trusted to list it.
	f.noMetadata = true
	if _, err := a.ResolveKey(t.Context(), "alias/x"); !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Errorf("ResolveKey without metadata: %v, want ErrKMSUnavailable", err)
	}

	// The AllowList over AWS KMS: objects sealed under the listed key's ARN
	// pass; any other ARN is refused without a Decrypt.
	f.noMetadata = false
	ok := kms.ObjectKeys{Keys: a, KeyID: "alias/x", Allowed: kms.NewAllowList(a, "alias/x")}
	if err := ok.Allowed.Check(t.Context(), fakeARN); err != nil {
		t.Errorf("Check(%s): %v", fakeARN, err)
	}
	f.decryptIn = nil
	planted := envelope.Metadata{KeyID: "arn:aws:kms:us-east-1:444455556666:key/theirs", WrappedKey: []byte("blob")}
	if _, err := ok.Open(t.Context(), planted, "b", "k"); !errors.Is(err, kms.ErrKeyNotAllowed) || f.decryptIn != nil {
		t.Errorf("Open of a planted object: %v (Decrypt sent: %v), want ErrKeyNotAllowed and no Decrypt", err, f.decryptIn != nil)
	}
}

func TestAWSKMSKeyStatus(t *testing.T) {
	for _, state := range []types.KeyState{types.KeyStateEnabled, types.KeyStateDisabled, types.KeyStatePendingDeletion, types.KeyStatePendingImport} {
		f := &fakeKMS{keyState: state}
		st, err := New(f).KeyStatus(t.Context(), "alias/x")
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if st.State != kms.KeyState(state) || !slices.Equal(st.IDs, []string{fakeKeyID, fakeARN}) {
			t.Errorf("%s: status %+v", state, st)
		}
		if !slices.Equal(f.described, []string{"alias/x"}) {
			t.Errorf("described %q", f.described)
		}
	}
	// DescribeKey's failures keep their kind; a key without names is malformed.
	f := &fakeKMS{describeErr: apiErr(400, "NotFoundException", secret)}
	if _, err := New(f).KeyStatus(t.Context(), "alias/x"); !errors.Is(err, kms.ErrKeyNotFound) {
		t.Errorf("not found: %v", err)
	}
	f = &fakeKMS{keyState: types.KeyStateEnabled, noMetadata: true}
	if _, err := New(f).KeyStatus(t.Context(), "alias/x"); !errors.Is(err, kms.ErrKMSUnavailable) {
		t.Errorf("no metadata: %v", err)
	}
}
