package keyring

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"hash"
	"time"

	"github.com/s3seal/s3seal/envelope/kms"
)

// Importing key material, as AWS KMS's EXTERNAL keys: CreateExternalKey
// makes a key with no material (PendingImport); GetParametersForImport
// makes an RSA wrapping key pair and an import token; the customer wraps
// their 32 bytes under the public key; ImportKeyMaterial unwraps them with
// the private key and the key becomes usable.
//
// The pending import (private key, token, validity) is kept in the keyring
// file, like the key material itself and as much in the clear, so that a
// replica sharing the file, or the same process after a restart, can
// finish an import that another began.

// WrappingAlgorithm is how the customer wraps the material they import,
// named as in AWS KMS.
type WrappingAlgorithm string

const (
	WrapRSAOAEPSHA1   WrappingAlgorithm = "RSAES_OAEP_SHA_1"
	WrapRSAOAEPSHA256 WrappingAlgorithm = "RSAES_OAEP_SHA_256"
)

// ImportParametersTTL is how long import parameters stay valid: AWS KMS's 24 hours.
const ImportParametersTTL = 24 * time.Hour

// importTokenSize is the length of the random import token.
const importTokenSize = 32

// ImportParameters are what an import needs: the public key to wrap the
// material under, and the token that names this import.
type ImportParameters struct {
	KeyID     string
	Token     []byte
	PublicKey []byte // DER SubjectPublicKeyInfo of the RSA wrapping key
	ValidTo   time.Time
}

// pendingImport is an import in progress, as the keyring file keeps it.
type pendingImport struct {
	Token      []byte            `json:"token"`
	Algorithm  WrappingAlgorithm `json:"algorithm"`
	PrivateKey []byte            `json:"private_key"` // PKCS #8
	ValidTo    time.Time         `json:"valid_to"`
}

// newHash returns a's OAEP hash, or nil for an algorithm the keyring does
// not support.
func (a WrappingAlgorithm) newHash() hash.Hash {
	switch a {
	case WrapRSAOAEPSHA1:
		return sha1.New()
	case WrapRSAOAEPSHA256:
		return sha256.New()
	}
	return nil
}

// validateImport checks a key's pending import, if any.
func (key *ringKey) validateImport() error {
	p := key.Import
	if p == nil {
		return nil
	}
	switch {
	case key.Origin != OriginExternal:
		return fmt.Errorf("key %s: pending import, but origin %s", key.ID, key.Origin)
	case p.Algorithm.newHash() == nil:
		return fmt.Errorf("key %s: unknown wrapping algorithm %q", key.ID, p.Algorithm)
	case len(p.Token) != importTokenSize || len(p.PrivateKey) == 0 || p.ValidTo.IsZero():
		return fmt.Errorf("key %s: incomplete import parameters", key.ID)
	}
	return nil
}

// CreateExternalKey makes a key for imported material (origin EXTERNAL)
// that has none yet: it is PendingImport, unusable until ImportKeyMaterial.
func (k *Keyring) CreateExternalKey(description string) (KeyInfo, error) {
	return k.addKey("CreateKey", nil, OriginExternal, KeySpec{Description: description})
}

// GetParametersForImport makes a fresh RSA wrapping key of bits (2048,
// 3072 or 4096) and an import token for the EXTERNAL key keyID names,
// valid for ImportParametersTTL. They replace any earlier ones for that
// key, which no longer work.
func (k *Keyring) GetParametersForImport(keyID string, alg WrappingAlgorithm, bits int) (ImportParameters, error) {
	const op = "GetParametersForImport"
	if alg.newHash() == nil {
		return ImportParameters{}, ringUnsupported(op, "wrapping algorithm %q is not supported", alg)
	}
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return ImportParameters{}, ringUnsupported(op, "wrapping key of %d bits is not supported", bits)
	}
	// Checked now, and again under the file lock, so that a request that
	// would fail costs no key pair: a 4096-bit one takes a while, and is
	// made before taking the lock.
	if key := k.state.Load().resolve(keyID, k.now()); key == nil {
		return ImportParameters{}, ringNotFound(op, keyID)
	} else if err := key.importable(op); err != nil {
		return ImportParameters{}, err
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return ImportParameters{}, ringErr(op, kms.ErrKMSUnavailable, "", "making a wrapping key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return ImportParameters{}, ringErr(op, kms.ErrKMSUnavailable, "", "encoding the wrapping key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return ImportParameters{}, ringErr(op, kms.ErrKMSUnavailable, "", "encoding the public key: %w", err)
	}
	p := &pendingImport{Token: make([]byte, importTokenSize), Algorithm: alg, PrivateKey: pkcs8}
	rand.Read(p.Token)
	info, err := k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		if err := key.importable(op); err != nil {
			return err
		}
		p.ValidTo = now.UTC().Round(0).Add(ImportParametersTTL)
		key.Import = p
		return nil
	})
	if err != nil {
		return ImportParameters{}, err
	}
	return ImportParameters{KeyID: info.ID, Token: bytes.Clone(p.Token), PublicKey: pub, ValidTo: p.ValidTo}, nil
}

// importable refuses imports into a key not made for them, or pending
// deletion.
func (key *ringKey) importable(op string) error {
	switch {
	case key.Origin != OriginExternal:
		return ringUnsupported(op, "key %s has origin %s; only EXTERNAL keys take imported material", key.ID, key.Origin)
	case key.State == kms.KeyPendingDeletion:
		return ringPendingDeletion(op, key)
	}
	return nil
}

// ImportKeyMaterial unwraps encrypted (made with the public key and
// algorithm of the import token names) and makes it the material of the
// key keyID names, which becomes Enabled if it was PendingImport. A key
// that already has material takes only the same material again, as in AWS
// KMS, and keeps its state. A successful import uses the parameters up.
func (k *Keyring) ImportKeyMaterial(keyID string, token, encrypted []byte) (KeyInfo, error) {
	const op = "ImportKeyMaterial"
	return k.updateKey(op, keyID, func(key *ringKey, now time.Time) error {
		if err := key.importable(op); err != nil {
			return err
		}
		if err := key.checkImportToken(op, token, now); err != nil {
			return err
		}
		material, err := key.Import.unwrap(op, encrypted)
		if err != nil {
			return err
		}
		return key.setImported(op, material)
	})
}

// checkImportToken accepts only the key's current, unexpired token.
func (key *ringKey) checkImportToken(op string, token []byte, now time.Time) error {
	p := key.Import
	if p == nil || subtle.ConstantTimeCompare(p.Token, token) != 1 {
		return ringErr(op, kms.ErrInvalidKMSRequest, codeInvalidImportToken,
			"the import token is not the current one for key %s", key.ID)
	}
	if !now.Before(p.ValidTo) {
		return ringErr(op, kms.ErrInvalidKMSRequest, codeExpiredImportToken,
			"the import token for key %s expired at %s", key.ID, p.ValidTo.Format(time.RFC3339))
	}
	return nil
}

// unwrap decrypts the customer's wrapped material with p's private key.
func (p *pendingImport) unwrap(op string, encrypted []byte) ([]byte, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(p.PrivateKey)
	priv, ok := parsed.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, ringErr(op, kms.ErrKMSUnavailable, "", "the stored wrapping key is unusable")
	}
	// The algorithm was checked when the parameters were made and loaded.
	material, err := rsa.DecryptOAEP(p.Algorithm.newHash(), nil, priv, encrypted, nil)
	if err != nil {
		return nil, ringBadCiphertext(op, "the encrypted key material does not open with the import's wrapping key and algorithm")
	}
	return material, nil
}

// setImported makes material the key's, or checks that it is the key's.
func (key *ringKey) setImported(op string, material []byte) error {
	if len(material) != materialSize {
		clear(material)
		return ringErr(op, kms.ErrInvalidKMSRequest, codeIncorrectKeyMaterial,
			"key material is %d bytes, want %d", len(material), materialSize)
	}
	if len(key.Material) > 0 {
		same := subtle.ConstantTimeCompare(key.Material[0], material) == 1
		clear(material)
		if !same {
			return ringErr(op, kms.ErrInvalidKMSRequest, codeIncorrectKeyMaterial,
				"key %s already has other key material", key.ID)
		}
	} else {
		key.Material = [][]byte{material}
		key.State = kms.KeyEnabled // PendingImport: importable refused PendingDeletion
	}
	key.Import = nil
	return nil
}
