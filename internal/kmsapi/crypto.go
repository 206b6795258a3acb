package kmsapi

import (
	"encoding/json"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/envelope/kms"
)

// The cryptographic operations. Every key is a symmetric AES-256 key, so
// SYMMETRIC_DEFAULT is the only encryption algorithm; Nitro Enclave
// recipients are refused, since the keyring cannot attest anything.

const symmetricDefault = "SYMMETRIC_DEFAULT"

// maxCiphertext is AWS's bound on a CiphertextBlob.
const maxCiphertext = 6144

// checkAlgorithm accepts SYMMETRIC_DEFAULT (or nothing). Another algorithm
// AWS knows is for asymmetric keys, which this server has none of.
func checkAlgorithm(field, alg string) error {
	switch {
	case alg == "" || alg == symmetricDefault:
		return nil
	case slices.Contains(types.EncryptionAlgorithmSpec("").Values(), types.EncryptionAlgorithmSpec(alg)):
		return newError(errInvalidKeyUsage, "%s must be SYMMETRIC_DEFAULT: every key here is a symmetric encryption key", field)
	}
	return validation(field, "Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]")
}

// refuseRecipient refuses a Nitro Enclave attestation document.
func refuseRecipient(r json.RawMessage) error {
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return newError(errUnsupported, "Recipient (Nitro Enclaves attestation) is not supported")
}

func checkBlob(blob []byte) error {
	switch {
	case len(blob) == 0:
		return required("ciphertextBlob")
	case len(blob) > maxCiphertext:
		return validation("ciphertextBlob", "Member must have length less than or equal to %d", maxCiphertext)
	}
	return nil
}

// dryRun answers a request that has been checked and authorized, but
// asked not to be carried out, as AWS does.
func dryRun(asked bool) error {
	if asked {
		return newError(errDryRun, "The request would have succeeded, but the DryRun option is set.")
	}
	return nil
}

type encryptInput struct {
	KeyId               string
	Plaintext           []byte
	EncryptionContext   map[string]string
	GrantTokens         []string
	EncryptionAlgorithm string
	DryRun              bool
}

type encryptOutput struct {
	CiphertextBlob      []byte
	KeyId               string
	EncryptionAlgorithm string
}

func (c *call) encrypt(in *encryptInput) (any, error) {
	if err := checkAlgorithm("encryptionAlgorithm", in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	// The message gives the length only: never the plaintext.
	if n := len(in.Plaintext); n == 0 || n > kms.MaxEncryptPlaintext {
		return nil, validation("plaintext", "Member must have length between 1 and %d (it has %d bytes)", kms.MaxEncryptPlaintext, n)
	}
	key, err := c.keyFor("kms:Encrypt", "keyId", in.KeyId, true)
	if err != nil {
		return nil, err
	}
	if err := dryRun(in.DryRun); err != nil {
		return nil, err
	}
	w, err := c.h.ring.Encrypt(c.ctx, key.ID, in.Plaintext, in.EncryptionContext)
	clear(in.Plaintext)
	if err != nil {
		return nil, err
	}
	return &encryptOutput{CiphertextBlob: w.Ciphertext, KeyId: c.h.keyARN(key.ID), EncryptionAlgorithm: symmetricDefault}, nil
}

type decryptInput struct {
	CiphertextBlob      []byte
	EncryptionContext   map[string]string
	GrantTokens         []string
	KeyId               string
	EncryptionAlgorithm string
	Recipient           json.RawMessage
	DryRun              bool
}

type decryptOutput struct {
	KeyId               string
	Plaintext           []byte
	EncryptionAlgorithm string
}

func (o *decryptOutput) wipe() { clear(o.Plaintext) }

func (c *call) decrypt(in *decryptInput) (any, error) {
	if err := checkDecryptInput(in); err != nil {
		return nil, err
	}
	keyID, err := c.blobKey("kms:Decrypt", in.CiphertextBlob, "keyId", in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := dryRun(in.DryRun); err != nil {
		return nil, err
	}
	plaintext, err := c.h.ring.Decrypt(c.ctx, keyID, in.CiphertextBlob, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &decryptOutput{KeyId: c.h.keyARN(keyID), Plaintext: plaintext, EncryptionAlgorithm: symmetricDefault}, nil
}

func checkDecryptInput(in *decryptInput) error {
	if err := checkAlgorithm("encryptionAlgorithm", in.EncryptionAlgorithm); err != nil {
		return err
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return err
	}
	return checkBlob(in.CiphertextBlob)
}

// blobKey finds the key blob was made under, authorizes action on it, and
// checks it is the key ref (request member field) names, if it names one.
// The key a client names is resolved first, so that naming no key is a
// NotFoundException whatever the blob.
func (c *call) blobKey(action string, blob []byte, field, ref string) (string, error) {
	var named string
	if ref != "" {
		info, err := c.resolve(field, ref, true)
		if err != nil {
			return "", err
		}
		named = info.ID
	}
	keyID, err := c.h.ring.CiphertextKeyID(blob)
	if err != nil {
		return "", err
	}
	if err := c.authorize(action, keyID); err != nil {
		return "", err
	}
	if named != "" && named != keyID {
		return "", newError(errIncorrectKey, "The key ID in the request does not identify a KMS key that can perform this operation.")
	}
	return keyID, nil
}

type reEncryptInput struct {
	CiphertextBlob                 []byte
	SourceEncryptionContext        map[string]string
	SourceKeyId                    string
	DestinationKeyId               string
	DestinationEncryptionContext   map[string]string
	SourceEncryptionAlgorithm      string
	DestinationEncryptionAlgorithm string
	GrantTokens                    []string
	DryRun                         bool
}

type reEncryptOutput struct {
	CiphertextBlob                 []byte
	SourceKeyId                    string
	KeyId                          string
	SourceEncryptionAlgorithm      string
	DestinationEncryptionAlgorithm string
}

func (c *call) reEncrypt(in *reEncryptInput) (any, error) {
	if err := checkReEncryptInput(in); err != nil {
		return nil, err
	}
	// Both keys are resolved before either is authorized: naming no key
	// is a NotFoundException whoever asks.
	dst, err := c.resolve("destinationKeyId", in.DestinationKeyId, true)
	if err != nil {
		return nil, err
	}
	src, err := c.blobKey("kms:ReEncryptFrom", in.CiphertextBlob, "sourceKeyId", in.SourceKeyId)
	if err != nil {
		return nil, err
	}
	if err := c.authorize("kms:ReEncryptTo", dst.ID); err != nil {
		return nil, err
	}
	if err := dryRun(in.DryRun); err != nil {
		return nil, err
	}
	w, err := c.h.ring.ReEncrypt(c.ctx, in.CiphertextBlob, src, in.SourceEncryptionContext, dst.ID, in.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	return &reEncryptOutput{CiphertextBlob: w.Ciphertext, SourceKeyId: c.h.keyARN(src), KeyId: c.h.keyARN(dst.ID),
		SourceEncryptionAlgorithm: symmetricDefault, DestinationEncryptionAlgorithm: symmetricDefault}, nil
}

func checkReEncryptInput(in *reEncryptInput) error {
	if err := checkAlgorithm("sourceEncryptionAlgorithm", in.SourceEncryptionAlgorithm); err != nil {
		return err
	}
	if err := checkAlgorithm("destinationEncryptionAlgorithm", in.DestinationEncryptionAlgorithm); err != nil {
		return err
	}
	if in.DestinationKeyId == "" {
		return required("destinationKeyId")
	}
	return checkBlob(in.CiphertextBlob)
}
