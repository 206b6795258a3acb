package kmsapi

// operation is one KMS operation: run decodes its input from the body and
// does it.
type operation struct {
	run    func(c *call, body []byte) (any, error)
	writes bool // a successful run changed the keyring: Config.Changed is told
}

// handle makes an operation's run from a function of its decoded input.
func handle[In any](f func(c *call, in *In) (any, error)) func(*call, []byte) (any, error) {
	return func(c *call, body []byte) (any, error) {
		in := new(In)
		if err := decodeInput(body, in); err != nil {
			return nil, err
		}
		return f(c, in)
	}
}

func reads[In any](f func(c *call, in *In) (any, error)) operation {
	return operation{run: handle(f)}
}

func writes[In any](f func(c *call, in *In) (any, error)) operation {
	return operation{run: handle(f), writes: true}
}

// operations is every operation served, by X-Amz-Target name. Any other
// name is an UnknownOperationException.
func operations() map[string]operation {
	return map[string]operation{
		"Encrypt":                         reads((*call).encrypt),
		"Decrypt":                         reads((*call).decrypt),
		"ReEncrypt":                       reads((*call).reEncrypt),
		"GenerateDataKey":                 reads((*call).generateDataKey),
		"GenerateDataKeyWithoutPlaintext": reads((*call).generateDataKeyWithoutPlaintext),
		"GenerateRandom":                  reads((*call).generateRandom),

		"CreateKey":            writes((*call).createKey),
		"DescribeKey":          reads((*call).describeKey),
		"ListKeys":             reads((*call).listKeys),
		"UpdateKeyDescription": writes((*call).updateKeyDescription),
		"EnableKey":            writes((*call).enableKey),
		"DisableKey":           writes((*call).disableKey),
		"ScheduleKeyDeletion":  writes((*call).scheduleKeyDeletion),
		"CancelKeyDeletion":    writes((*call).cancelKeyDeletion),

		"CreateAlias": writes((*call).createAlias),
		"UpdateAlias": writes((*call).updateAlias),
		"DeleteAlias": writes((*call).deleteAlias),
		"ListAliases": reads((*call).listAliases),

		"EnableKeyRotation":    writes((*call).enableKeyRotation),
		"DisableKeyRotation":   writes((*call).disableKeyRotation),
		"GetKeyRotationStatus": reads((*call).getKeyRotationStatus),
		"RotateKeyOnDemand":    writes((*call).rotateKeyOnDemand),

		"GetParametersForImport": writes((*call).getParametersForImport),
		"ImportKeyMaterial":      writes((*call).importKeyMaterial),
	}
}
