package proxy

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"

	"github.com/s3seal/s3seal/envelope"
)

// Upload tokens are the UploadIds s3seal gives clients (docs/FORMAT.md,
// "Multipart uploads"). s3seal keeps no state between the requests of a
// multipart upload: the token carries what every later request needs — the
// store's upload id and the upload's wrapped data key — so any s3seal process
// with the same configuration serves any request, and a restart between parts
// loses nothing.
//
//	full token   = 0x01 ‖ u16 len ‖ upstream upload id ‖ u16 len ‖ CMK id
//	               ‖ u16 len ‖ wrapped data key ‖ tag (16 bytes)
//	listed token = 0x02 ‖ u16 len ‖ upstream upload id
//	tag          = HMAC-SHA256(HKDF-SHA256(data key, info "s3seal v1 upload token"),
//	               u32 len ‖ bucket ‖ u32 len ‖ key ‖ every token byte before the tag)[:16]
//
// both sent as unpadded base64url. The wrapped key in a full token is bound to
// the object's bucket and key by the key service, like the object's metadata;
// the tag, keyed by the data key itself, additionally binds the token to its
// upstream upload, so a token cannot pair one upload's key with another
// upload. A store's ListMultipartUploads answer does not carry an upload's
// metadata, so the tokens s3seal lists there are "listed" tokens without the
// key: good for ListParts, AbortMultipartUpload and CompleteMultipartUpload,
// refused by UploadPart and UploadPartCopy, which must encrypt.
const (
	tokenFull   = 0x01
	tokenListed = 0x02
	tokenTagLen = 16

	maxUpstreamUploadID = 1024
)

type uploadToken struct {
	upstreamID string
	hasKey     bool
	meta       envelope.Metadata
	signed     []byte // the token bytes the tag covers
	tag        []byte
}

func appendField(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// newUploadToken makes the full token of a new upload.
func newUploadToken(upstreamID string, meta envelope.Metadata, dk []byte, bucket, key string) (string, error) {
	if upstreamID == "" || len(upstreamID) > maxUpstreamUploadID || len(meta.KeyID) > 0xffff || len(meta.WrappedKey) > 0xffff {
		return "", errors.New("upload id or wrapped key too long for an upload token")
	}
	b := []byte{tokenFull}
	b = appendField(b, []byte(upstreamID))
	b = appendField(b, []byte(meta.KeyID))
	b = appendField(b, meta.WrappedKey)
	tag, err := tokenTag(dk, bucket, key, b)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append(b, tag...)), nil
}

// listedUploadToken is the key-less token of an upload found in a listing.
func listedUploadToken(upstreamID string) string {
	if len(upstreamID) > 0xffff {
		return upstreamID // cannot be a real id; decodes as no upload
	}
	return base64.RawURLEncoding.EncodeToString(appendField([]byte{tokenListed}, []byte(upstreamID)))
}

func tokenTag(dk []byte, bucket, key string, signed []byte) ([]byte, error) {
	mk, err := hkdf.Key(sha256.New, dk, nil, "s3seal v1 upload token", 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, mk)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(bucket)))
	m.Write(n[:])
	m.Write([]byte(bucket))
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	m.Write(n[:])
	m.Write([]byte(key))
	m.Write(signed)
	return m.Sum(nil)[:tokenTagLen], nil
}

var errBadToken = errors.New("malformed upload token")

// parseUploadToken decodes a token without checking its tag (that needs the
// data key: verify).
func parseUploadToken(s string) (uploadToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1 {
		return uploadToken{}, errBadToken
	}
	rest := b[1:]
	field := func() ([]byte, bool) {
		if len(rest) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return nil, false
		}
		f := rest[2 : 2+n]
		rest = rest[2+n:]
		return f, true
	}
	var t uploadToken
	id, ok := field()
	if !ok || len(id) == 0 || len(id) > maxUpstreamUploadID {
		return uploadToken{}, errBadToken
	}
	t.upstreamID = string(id)
	switch b[0] {
	case tokenListed:
		if len(rest) != 0 {
			return uploadToken{}, errBadToken
		}
		return t, nil
	case tokenFull:
		keyID, ok1 := field()
		wrapped, ok2 := field()
		if !ok1 || !ok2 || len(keyID) == 0 || len(wrapped) == 0 || len(rest) != tokenTagLen {
			return uploadToken{}, errBadToken
		}
		t.hasKey = true
		t.meta = envelope.Metadata{KeyID: string(keyID), WrappedKey: append([]byte(nil), wrapped...)}
		t.signed = b[:len(b)-tokenTagLen]
		t.tag = rest
		return t, nil
	}
	return uploadToken{}, errBadToken
}

// verify checks the tag with the upload's data key.
func (t uploadToken) verify(dk []byte, bucket, key string) bool {
	want, err := tokenTag(dk, bucket, key, t.signed)
	return err == nil && hmac.Equal(want, t.tag)
}

func errNoSuchUpload(cause error) *s3Error {
	return newS3Error("NoSuchUpload", http.StatusNotFound,
		"The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", cause)
}

// uploadTokenParam decodes the client's uploadId parameter.
func uploadTokenParam(t target) (uploadToken, string, error) {
	s := t.query.Get("uploadId")
	tok, err := parseUploadToken(s)
	if err != nil {
		return tok, s, errNoSuchUpload(err)
	}
	return tok, s, nil
}
