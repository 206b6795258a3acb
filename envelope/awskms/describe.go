package awskms

import (
	"context"
	"errors"
	"time"

	kmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/envelope/kms"
)

// DescribeAPI is what Describe needs of the KMS API beyond API;
// *kmsapi.Client has it.
type DescribeAPI interface {
	ListAliases(ctx context.Context, in *kmsapi.ListAliasesInput, optFns ...func(*kmsapi.Options)) (*kmsapi.ListAliasesOutput, error)
	GetKeyRotationStatus(ctx context.Context, in *kmsapi.GetKeyRotationStatusInput, optFns ...func(*kmsapi.Options)) (*kmsapi.GetKeyRotationStatusOutput, error)
}

// CMKInfo describes a CMK as AWS KMS does (DescribeKey, ListAliases,
// GetKeyRotationStatus), for `s3seal keys list` with the AWS provider.
type CMKInfo struct {
	ID, ARN, Description string
	Aliases              []string
	Created              time.Time
	State                kms.KeyState
	Origin               string // AWS_KMS, EXTERNAL, ...
	DeletionDate         time.Time
	RotationEnabled      bool
	RotationUnknown      bool      // the KMS would not say (access denied, say)
	RotationPeriodDays   int       // 0 when KMS does not say
	NextRotation         time.Time // zero when KMS does not say
}

// Describe describes the CMK keyID (an id, ARN or alias/NAME) names. A
// key that cannot rotate (imported material, for one: the KMS answers
// UnsupportedOperationException) reads as rotation disabled; any other
// failure to read the rotation status as unknown.
func (a *Service) Describe(ctx context.Context, keyID string) (CMKInfo, error) {
	d, ok := a.api.(DescribeAPI)
	if !ok {
		return CMKInfo{}, &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrInvalidKMSRequest, Cause: errors.New("this KMS client cannot list aliases")}
	}
	out, err := a.api.DescribeKey(ctx, &kmsapi.DescribeKeyInput{KeyId: &keyID})
	if err != nil {
		return CMKInfo{}, a.mapError(ctx, "DescribeKey", err, keyID)
	}
	m := out.KeyMetadata
	if m == nil || m.KeyId == nil {
		return CMKInfo{}, &kms.KMSError{Op: "DescribeKey", Kind: kms.ErrKMSUnavailable, Service: a.where.service(), Cause: errors.New("malformed response: no key metadata")}
	}
	info := CMKInfo{ID: *m.KeyId, ARN: deref(m.Arn, ""), Description: deref(m.Description, ""), State: kms.KeyState(m.KeyState),
		Origin: string(m.Origin), Aliases: []string{}}
	if m.CreationDate != nil {
		info.Created = *m.CreationDate
	}
	if m.DeletionDate != nil {
		info.DeletionDate = *m.DeletionDate
	}
	if info.Aliases, err = a.aliases(ctx, d, info.ID); err != nil {
		return CMKInfo{}, err
	}
	rot, err := d.GetKeyRotationStatus(ctx, &kmsapi.GetKeyRotationStatusInput{KeyId: &info.ID})
	var unsupported *types.UnsupportedOperationException
	switch {
	case errors.As(err, &unsupported):
	case err != nil:
		info.RotationUnknown = true
	default:
		info.RotationEnabled = rot.KeyRotationEnabled
		if rot.RotationPeriodInDays != nil {
			info.RotationPeriodDays = int(*rot.RotationPeriodInDays)
		}
		if rot.NextRotationDate != nil {
			info.NextRotation = *rot.NextRotationDate
		}
	}
	return info, nil
}

// aliases lists the aliases of the key with id, every page.
func (a *Service) aliases(ctx context.Context, d DescribeAPI, id string) ([]string, error) {
	aliases := []string{}
	in := &kmsapi.ListAliasesInput{KeyId: &id}
	for {
		out, err := d.ListAliases(ctx, in)
		if err != nil {
			return nil, a.mapError(ctx, "ListAliases", err, id)
		}
		for _, al := range out.Aliases {
			if al.AliasName != nil && (al.TargetKeyId == nil || *al.TargetKeyId == id) {
				aliases = append(aliases, *al.AliasName)
			}
		}
		if !out.Truncated || out.NextMarker == nil {
			return aliases, nil
		}
		in.Marker = out.NextMarker
	}
}
