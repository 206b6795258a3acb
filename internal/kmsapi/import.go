package kmsapi

import (
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/envelope/keyring"
)

// Importing key material into EXTERNAL keys (envelope/keyring/import.go).
// Refused: the RSA-AES hybrid and PKCS #1 v1.5 wrappings, SM2, and
// expiring material (KEY_MATERIAL_EXPIRES, AWS's default): the keyring
// would have to delete material on a timer, and every object under it
// would be unreadable until the customer imported it again.

const (
	expires       = "KEY_MATERIAL_EXPIRES"
	doesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE"
)

type getParametersForImportInput struct {
	KeyId             string
	WrappingAlgorithm string
	WrappingKeySpec   string
}

type getParametersForImportOutput struct {
	KeyId             string
	ImportToken       []byte
	PublicKey         []byte
	ParametersValidTo epoch
}

func (c *call) getParametersForImport(in *getParametersForImportInput) (any, error) {
	alg, bits, err := wrapping(in.WrappingAlgorithm, in.WrappingKeySpec)
	if err != nil {
		return nil, err
	}
	key, err := c.keyFor("kms:GetParametersForImport", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	p, err := c.h.ring.GetParametersForImport(key.ID, alg, bits)
	if err != nil {
		return nil, err
	}
	return &getParametersForImportOutput{KeyId: c.h.keyARN(key.ID), ImportToken: p.Token,
		PublicKey: p.PublicKey, ParametersValidTo: epoch(p.ValidTo)}, nil
}

// wrapping checks the wrapping algorithm and key spec asked for.
func wrapping(alg, spec string) (keyring.WrappingAlgorithm, int, error) {
	switch {
	case alg == "":
		return "", 0, required("wrappingAlgorithm")
	case spec == "":
		return "", 0, required("wrappingKeySpec")
	}
	err := checkEnum("wrappingAlgorithm", alg, types.AlgorithmSpec("").Values(),
		string(keyring.WrapRSAOAEPSHA256), string(keyring.WrapRSAOAEPSHA1))
	if err != nil {
		return "", 0, err
	}
	bits := map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
	if err := checkEnum("wrappingKeySpec", spec, types.WrappingKeySpec("").Values(), "RSA_2048", "RSA_3072", "RSA_4096"); err != nil {
		return "", 0, err
	}
	return keyring.WrappingAlgorithm(alg), bits[spec], nil
}

type importKeyMaterialInput struct {
	KeyId                  string
	ImportToken            []byte
	EncryptedKeyMaterial   []byte
	ExpirationModel        string
	ValidTo                *epoch
	ImportType             string
	KeyMaterialDescription string
	KeyMaterialId          string
}

func (c *call) importKeyMaterial(in *importKeyMaterialInput) (any, error) {
	if err := checkImport(in); err != nil {
		return nil, err
	}
	key, err := c.keyFor("kms:ImportKeyMaterial", "keyId", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	if in.ImportType == string(types.ImportTypeNewKeyMaterial) && key.Versions > 0 {
		return nil, newError(errUnsupported, "importing new key material into a key that has some (a rotation) is not supported")
	}
	if _, err := c.h.ring.ImportKeyMaterial(key.ID, in.ImportToken, in.EncryptedKeyMaterial); err != nil {
		return nil, err
	}
	return &keyIDOutput{KeyId: c.h.keyARN(key.ID)}, nil
}

func checkImport(in *importKeyMaterialInput) error {
	switch {
	case len(in.ImportToken) == 0:
		return required("importToken")
	case len(in.EncryptedKeyMaterial) == 0:
		return required("encryptedKeyMaterial")
	case in.KeyMaterialId != "" || in.KeyMaterialDescription != "":
		return newError(errUnsupported, "KeyMaterialId and KeyMaterialDescription are not supported")
	}
	switch types.ImportType(in.ImportType) {
	case "", types.ImportTypeExistingKeyMaterial, types.ImportTypeNewKeyMaterial:
	default:
		return validation("importType", "Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]")
	}
	return checkExpiration(in.ExpirationModel, in.ValidTo)
}

// checkExpiration accepts only material that does not expire, which must
// be asked for: AWS's default is KEY_MATERIAL_EXPIRES.
func checkExpiration(model string, validTo *epoch) error {
	switch {
	case model == doesNotExpire && validTo != nil:
		return newError(errValidation, "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.")
	case model == doesNotExpire:
		return nil
	case (model == "" || model == expires) && validTo == nil:
		return newError(errValidation, "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES (the default).")
	case model == "" || model == expires:
		return newError(errUnsupported, "expiring key material is not supported: import it with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE")
	}
	return validation("expirationModel", "Member must satisfy enum value set: [%s, %s]", expires, doesNotExpire)
}
