package kmsapi

import (
	"crypto/rand"
	"encoding/json"

	"github.com/s3seal/s3seal/envelope/keyring"
)

// Data keys and random bytes.

type generateDataKeyInput struct {
	KeyId             string
	EncryptionContext map[string]string
	NumberOfBytes     *int32
	KeySpec           string
	GrantTokens       []string
	Recipient         json.RawMessage
	DryRun            bool
}

type generateDataKeyOutput struct {
	CiphertextBlob []byte
	Plaintext      []byte `json:",omitempty"`
	KeyId          string
}

func (o *generateDataKeyOutput) wipe() { clear(o.Plaintext) }

func (c *call) generateDataKey(in *generateDataKeyInput) (any, error) {
	return c.dataKey("kms:GenerateDataKey", in)
}

// generateDataKeyWithoutPlaintext is GenerateDataKey that answers only the
// wrapped key: the plaintext is made, used to wrap, and wiped.
func (c *call) generateDataKeyWithoutPlaintext(in *generateDataKeyInput) (any, error) {
	out, err := c.dataKey("kms:GenerateDataKeyWithoutPlaintext", in)
	if err != nil {
		return nil, err
	}
	out.wipe()
	out.Plaintext = nil
	return out, nil
}

func (c *call) dataKey(action string, in *generateDataKeyInput) (*generateDataKeyOutput, error) {
	size, err := dataKeySize(in.KeySpec, in.NumberOfBytes)
	if err != nil {
		return nil, err
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	key, err := c.keyFor(action, "keyId", in.KeyId, true)
	if err != nil {
		return nil, err
	}
	if err := dryRun(in.DryRun); err != nil {
		return nil, err
	}
	dk, err := c.h.ring.GenerateDataKeyOfSize(c.ctx, key.ID, size, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &generateDataKeyOutput{CiphertextBlob: dk.Ciphertext, Plaintext: dk.Plaintext, KeyId: c.h.keyARN(key.ID)}, nil
}

// dataKeySize reads the data key's length from exactly one of KeySpec and
// NumberOfBytes, as AWS requires.
func dataKeySize(spec string, n *int32) (int, error) {
	switch {
	case spec != "" && n != nil:
		return 0, newError(errValidation, "Please specify either number of bytes or key spec.")
	case n != nil:
		return checkByteCount("numberOfBytes", n)
	case spec == "AES_256":
		return 32, nil
	case spec == "AES_128":
		return 16, nil
	case spec == "":
		return 0, newError(errValidation, "Please specify either number of bytes or key spec.")
	}
	return 0, validation("keySpec", "Member must satisfy enum value set: [AES_256, AES_128]")
}

// checkByteCount checks a NumberOfBytes member: 1 to 1024.
func checkByteCount(field string, n *int32) (int, error) {
	switch {
	case n == nil:
		return 0, required(field)
	case *n < 1 || *n > keyring.MaxDataKeySize:
		return 0, validation(field, "Member must have value between 1 and %d", keyring.MaxDataKeySize)
	}
	return int(*n), nil
}

type generateRandomInput struct {
	NumberOfBytes    *int32
	CustomKeyStoreId string
	Recipient        json.RawMessage
}

type generateRandomOutput struct {
	Plaintext []byte
}

func (o *generateRandomOutput) wipe() { clear(o.Plaintext) }

func (c *call) generateRandom(in *generateRandomInput) (any, error) {
	n, err := checkByteCount("numberOfBytes", in.NumberOfBytes)
	if err != nil {
		return nil, err
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != "" {
		return nil, newError(errUnsupported, "custom key stores are not supported")
	}
	if err := c.authorize("kms:GenerateRandom", ""); err != nil {
		return nil, err
	}
	out := &generateRandomOutput{Plaintext: make([]byte, n)}
	rand.Read(out.Plaintext)
	return out, nil
}
