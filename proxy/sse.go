package proxy

import (
	"cmp"
	"maps"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/envelope/kms"
)

// SSE-KMS request headers: how an S3 client chooses the CMK of an object it
// writes, and an encryption context bound to it. s3seal honours them on the
// writes that make an object's data key (PutObject, CreateMultipartUpload,
// CopyObject: route.sse; CompleteMultipartUpload only checks they agree with
// its upload), validated as S3 validates them, and only for CMKs in the
// allow-list; every other request carrying one is refused, so a client never
// believes a choice was applied that was not.
const (
	sseHeader        = "x-amz-server-side-encryption"
	sseKeyHeader     = "x-amz-server-side-encryption-aws-kms-key-id"
	sseContextHeader = "x-amz-server-side-encryption-context"
	sseBucketKey     = "x-amz-server-side-encryption-bucket-key-enabled"
)

func isSSEHeader(lk string) bool {
	switch lk {
	case sseHeader, sseKeyHeader, sseContextHeader, sseBucketKey:
		return true
	}
	return false
}

// checkSSEHeaders refuses SSE headers on a route that does not honour them
// (S3 answers a GET carrying them with 400 too).
func checkSSEHeaders(rt *route, h http.Header) error {
	if rt.sse {
		return nil
	}
	for k := range h {
		if lk := strings.ToLower(k); isSSEHeader(lk) {
			return newS3Error("InvalidArgument", http.StatusBadRequest,
				"The "+lk+" header is not supported for this operation.", nil)
		}
	}
	return nil
}

// writeKeys is p.keys with the CMK for the object x writes — the one the
// client named (aws:kms with a key id, an allowed CMK), else the bucket's
// default (bucketcmk.go), else s3seal's; aws:kms alone and AES256 (SSE-S3)
// name none — the client's encryption context, if any, and bucket keys if
// the object uses them.
func (p *Proxy) writeKeys(x *exchange) (kms.ObjectKeys, error) {
	h := x.t.header
	alg, keyID := strings.TrimSpace(h.Get(sseHeader)), strings.TrimSpace(h.Get(sseKeyHeader))
	_, hasKeyID := h[http.CanonicalHeaderKey(sseKeyHeader)]
	if err := checkSSEChoice(alg, hasKeyID, h); err != nil {
		return kms.ObjectKeys{}, err
	}
	if keyID == "" && hasKeyID {
		return kms.ObjectKeys{}, newS3Error("InvalidArgument", http.StatusBadRequest,
			"The x-amz-server-side-encryption-aws-kms-key-id header is empty.", nil)
	}
	encCtx, err := requestContext(h)
	if err != nil {
		return kms.ObjectKeys{}, err
	}
	var setting bucketSetting
	if keyID == "" || p.keys.BucketKeys != nil && strings.TrimSpace(h.Get(sseBucketKey)) == "" {
		// The request leaves something to the bucket's setting.
		if setting, err = p.bucketSetting(x.r.Context(), x.t.bucket); err != nil {
			return kms.ObjectKeys{}, err
		}
	}
	keys := p.keys.WithContext(encCtx)
	if !p.wantsBucketKeys(h, setting) {
		keys = keys.WithoutBucketKeys()
	}
	keyID = cmp.Or(keyID, setting.cmk)
	if keyID == "" {
		return keys, nil
	}
	id, err := p.keys.Allowed.Choose(x.r.Context(), keyID)
	if err != nil {
		return kms.ObjectKeys{}, chooseError(err)
	}
	return keys.Under(id), nil
}

// wantsBucketKeys says whether a write with headers h, in a bucket with
// setting s, uses bucket keys: as the request says, else as the bucket
// says, else by default; never where none are configured (the answer then
// says so: no bucket-key-enabled header).
func (p *Proxy) wantsBucketKeys(h http.Header, s bucketSetting) bool {
	if p.keys.BucketKeys == nil {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(h.Get(sseBucketKey))) {
	case "false":
		return false
	case "true":
		return true
	}
	return p.usesBucketKeys(s)
}

// requestContext is the client's encryption context
// (x-amz-server-side-encryption-context), bound into the data key's
// encryption context beside bucket and key and kept with the object
// (docs/FORMAT.md §6, §6.1); nil for none.
func requestContext(h http.Header) (map[string]string, error) {
	v, ok := h[http.CanonicalHeaderKey(sseContextHeader)]
	if !ok {
		return nil, nil
	}
	c, err := envelope.DecodeContext(strings.TrimSpace(strings.Join(v, ",")))
	if err != nil {
		return nil, newS3Error("InvalidArgument", http.StatusBadRequest,
			"The x-amz-server-side-encryption-context header is invalid: "+err.Error()+".", err)
	}
	return c, nil
}

// checkCompleteSSE accepts SSE headers on CompleteMultipartUpload (minio-go
// sends those of the upload to any store but AWS) when they agree with the
// CMK the upload was created under, which the Complete cannot change.
func (p *Proxy) checkCompleteSSE(x *exchange, upload envelope.Metadata) error {
	h := x.t.header
	alg, keyID := strings.TrimSpace(h.Get(sseHeader)), strings.TrimSpace(h.Get(sseKeyHeader))
	if err := checkSSEChoice(alg, keyID != "", h); err != nil {
		return err
	}
	encCtx, err := requestContext(h)
	if err != nil {
		return err
	}
	if encCtx != nil && !maps.Equal(encCtx, upload.Context) {
		return newS3Error("InvalidArgument", http.StatusBadRequest,
			"The upload was created with another encryption context than x-amz-server-side-encryption-context names.", nil)
	}
	if keyID == "" {
		return nil
	}
	uploadKeyID := upload.KeyID
	id, err := p.keys.Allowed.Choose(x.r.Context(), keyID)
	if err != nil {
		return chooseError(err)
	}
	if uploadKeyID == "" || !p.keys.Allowed.SameKey(id, uploadKeyID) {
		return newS3Error("InvalidArgument", http.StatusBadRequest,
			"The upload was created under another KMS key than x-amz-server-side-encryption-aws-kms-key-id names.", nil)
	}
	return nil
}

// checkSSEChoice validates the SSE headers of a write as S3 does.
func checkSSEChoice(alg string, hasKeyID bool, h http.Header) error {
	invalid := func(msg string) error { return newS3Error("InvalidArgument", http.StatusBadRequest, msg, nil) }
	switch alg {
	case "", "AES256":
		if hasKeyID {
			return invalid("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
	case "aws:kms":
	case "aws:kms:dsse":
		return errNotImplemented("dual-layer SSE-KMS (x-amz-server-side-encryption: aws:kms:dsse)")
	default:
		return invalid("The encryption method specified is not supported")
	}
	if _, ok := h[http.CanonicalHeaderKey(sseContextHeader)]; ok && alg != "aws:kms" {
		return invalid("An encryption context requires x-amz-server-side-encryption: aws:kms")
	}
	switch v := strings.ToLower(strings.TrimSpace(h.Get(sseBucketKey))); v {
	case "", "true", "false":
		// false keeps an object's data key its own, true derives it from
		// a bucket key (wantsBucketKeys).
	default:
		return invalid("The x-amz-server-side-encryption-bucket-key-enabled header must be true or false.")
	}
	return nil
}
