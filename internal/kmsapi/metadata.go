package kmsapi

import (
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"
)

// keyMetadata is AWS's KeyMetadata, as CreateKey and DescribeKey answer it.
type keyMetadata struct {
	AWSAccountId          string
	KeyId                 string
	Arn                   string
	CreationDate          epoch
	Enabled               bool
	Description           string
	KeyUsage              string
	KeyState              string
	DeletionDate          epoch `json:",omitzero"`
	Origin                string
	KeyManager            string
	CustomerMasterKeySpec string
	KeySpec               string
	EncryptionAlgorithms  []string
	MultiRegion           bool
	ExpirationModel       string `json:",omitempty"`
}

// Key origins as AWS names them.
const (
	originAWSKMS   = "AWS_KMS"
	originExternal = "EXTERNAL"
)

func (h *handler) metadata(info keyring.KeyInfo) *keyMetadata {
	m := &keyMetadata{
		AWSAccountId:          h.cfg.Account,
		KeyId:                 info.ID,
		Arn:                   h.keyARN(info.ID),
		CreationDate:          epoch(info.Created),
		Enabled:               info.State == kms.KeyEnabled,
		Description:           info.Description,
		KeyUsage:              "ENCRYPT_DECRYPT",
		KeyState:              string(info.State),
		DeletionDate:          epoch(info.DeletionDate),
		Origin:                originAWSKMS,
		KeyManager:            "CUSTOMER",
		CustomerMasterKeySpec: symmetricDefault,
		KeySpec:               symmetricDefault,
		EncryptionAlgorithms:  []string{symmetricDefault},
	}
	if info.Origin == keyring.OriginExternal {
		m.Origin = originExternal
		if info.Versions > 0 { // imported material never expires here
			m.ExpirationModel = "KEY_MATERIAL_DOES_NOT_EXPIRE"
		}
	}
	return m
}
