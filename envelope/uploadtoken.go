package envelope

// Upload tokens: the UploadIds s3seal gives clients, which carry the state
// of a multipart upload between its requests (docs/FORMAT.md §11.2).

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

const (
	tokenFull   = 0x01
	tokenListed = 0x02
	tokenV2     = 0x03 // a full token of a FramingV2 upload: its part checksum follows the wrapped key
	tokenTagLen = 16

	// MaxUploadID bounds the store's upload id a token carries.
	MaxUploadID = 1024
)

// ErrMalformedToken means a string that is no upload token.
var ErrMalformedToken = errors.New("malformed upload token")

// UploadToken is a decoded upload token. A full token (HasKey) carries the
// upload's wrapped data key; a listed one (made from a store's listing,
// which has no metadata) only the store's upload id.
type UploadToken struct {
	UploadID string   // the store's
	HasKey   bool     // a full token
	Meta     Metadata // the upload's data key, wrapped (full tokens)
	signed   []byte   // the token bytes the tag covers
	tag      []byte
}

// NewUploadToken makes the full token of a new upload of bucket/key whose
// data key is dataKey, wrapped as meta.
func NewUploadToken(uploadID string, meta Metadata, dataKey []byte, bucket, key string) (string, error) {
	if uploadID == "" || len(uploadID) > MaxUploadID || len(meta.KeyID) > 0xffff || len(meta.WrappedKey) > 0xffff {
		return "", errors.New("upload id or wrapped key too long for an upload token")
	}
	b := []byte{tokenFull}
	if meta.Framing == FramingV2 {
		b[0] = tokenV2
	}
	b = appendField(b, []byte(uploadID))
	b = appendField(b, []byte(meta.KeyID))
	b = appendField(b, meta.WrappedKey)
	if meta.Framing == FramingV2 {
		b = appendField(b, []byte(meta.PartAlgorithm+"/"+meta.PartType))
	}
	if len(meta.Context) > 0 {
		b = appendField(b, []byte(EncodeContext(meta.Context))) // optional: tokens without one stay valid
	}
	tag, err := tokenTag(dataKey, bucket, key, b)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append(b, tag...)), nil
}

// ListedUploadToken is the key-less token of an upload found in a listing.
func ListedUploadToken(uploadID string) string {
	if len(uploadID) > 0xffff {
		return uploadID // cannot be a real id; decodes as no upload
	}
	return base64.RawURLEncoding.EncodeToString(appendField([]byte{tokenListed}, []byte(uploadID)))
}

// ParseUploadToken decodes a token without checking its tag, which needs
// the data key (Verify).
func ParseUploadToken(s string) (UploadToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1 {
		return UploadToken{}, ErrMalformedToken
	}
	f := fields{rest: b[1:]}
	var t UploadToken
	id, ok := f.next()
	if !ok || len(id) == 0 || len(id) > MaxUploadID {
		return UploadToken{}, ErrMalformedToken
	}
	t.UploadID = string(id)
	switch b[0] {
	case tokenListed:
		if len(f.rest) != 0 {
			return UploadToken{}, ErrMalformedToken
		}
		return t, nil
	case tokenFull, tokenV2:
		keyID, ok1 := f.next()
		wrapped, ok2 := f.next()
		if !ok1 || !ok2 || len(keyID) == 0 || len(wrapped) == 0 {
			return UploadToken{}, ErrMalformedToken
		}
		t.Meta = Metadata{KeyID: string(keyID), WrappedKey: append([]byte(nil), wrapped...), Framing: FramingV1}
		if b[0] == tokenV2 {
			p, ok := f.next()
			if !ok {
				return UploadToken{}, ErrMalformedToken
			}
			if t.Meta.PartAlgorithm, t.Meta.PartType, err = parsePartChecksum(string(p)); err != nil {
				return UploadToken{}, ErrMalformedToken
			}
			t.Meta.Framing = FramingV2
		}
		if len(f.rest) != tokenTagLen {
			encoded, ok := f.next()
			c, err := DecodeContext(string(encoded))
			if !ok || err != nil || len(f.rest) != tokenTagLen {
				return UploadToken{}, ErrMalformedToken
			}
			t.Meta.Context = c
		}
		t.HasKey = true
		t.signed = b[:len(b)-tokenTagLen]
		t.tag = f.rest
		return t, nil
	}
	return UploadToken{}, ErrMalformedToken
}

// Verify checks a full token's tag with the upload's data key: the token
// was made for this upload of bucket/key.
func (t UploadToken) Verify(dataKey []byte, bucket, key string) bool {
	want, err := tokenTag(dataKey, bucket, key, t.signed)
	return err == nil && t.HasKey && hmac.Equal(want, t.tag)
}

func tokenTag(dataKey []byte, bucket, key string, signed []byte) ([]byte, error) {
	mk, err := hkdf.Key(sha256.New, dataKey, nil, "s3seal v1 upload token", 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, mk)
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(bucket))))
	m.Write([]byte(bucket))
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(key))))
	m.Write([]byte(key))
	m.Write(signed)
	return m.Sum(nil)[:tokenTagLen], nil
}

func appendField(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// fields reads uint16-length-prefixed fields.
type fields struct{ rest []byte }

func (f *fields) next() ([]byte, bool) {
	if len(f.rest) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(f.rest))
	if len(f.rest) < 2+n {
		return nil, false
	}
	v := f.rest[2 : 2+n]
	f.rest = f.rest[2+n:]
	return v, true
}
