package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/s3seal/s3seal/envelope/kms"
	"github.com/s3seal/s3seal/internal/recovery"
	"github.com/s3seal/s3seal/internal/store"
)

const inspectUsage = `Usage: s3seal inspect s3://BUCKET/KEY [-version-id V]

Prints, as JSON and without decrypting anything, what the store holds for
an object s3seal wrote: format version, CMK, encryption context, wrapped data
key (in version 5 the bucket's key, and the object's salt), stored and
plaintext size, and each part's sizes. Kept beside a copy
of the stored bytes, it is what s3seal decrypt -metadata reads
(docs/RECOVERY.md). Reads the store S3SEAL_UPSTREAM_* configures (or the
embedded one); asks no key service.

Flags:
`

const decryptUsage = `Usage: s3seal decrypt s3://BUCKET/KEY [-version-id V] [-o FILE]
       s3seal decrypt -ciphertext FILE -metadata FILE [-o FILE]

Decrypts an object without a running s3seal: straight from the store
S3SEAL_UPSTREAM_* configures, or fully offline from a copy of its stored
bytes and the JSON s3seal inspect printed for it. The data key is unwrapped
by the configured key service, under the CMKs S3SEAL_KMS_KEY_ID and
S3SEAL_KMS_DECRYPT_KEY_IDS name. With -o the file appears only once every
byte is authenticated; on standard output a failure may follow a prefix of
the true plaintext, and the exit status is 1.

Flags:
`

// parseS3URL splits s3://BUCKET/KEY.
func parseS3URL(s string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q: want s3://BUCKET/KEY", s)
	}
	return bucket, key, nil
}

// recoveryFlags parses a recovery command's flags around its one optional
// s3:// argument.
func (c cli) recoveryFlags(fs *flag.FlagSet, usage string, args []string) (obj store.Object, code int) {
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return obj, exitOK
			}
			return obj, exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) > 1 {
		fmt.Fprintf(c.stderr, "s3seal %s: one s3://BUCKET/KEY at most\n", fs.Name())
		return obj, exitUsage
	}
	if len(pos) == 1 {
		var err error
		if obj.Bucket, obj.Key, err = parseS3URL(pos[0]); err != nil {
			fmt.Fprintf(c.stderr, "s3seal %s: %v\n", fs.Name(), err)
			return obj, exitUsage
		}
	}
	return obj, -1
}

func (c cli) inspect(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	version := fs.String("version-id", "", "a version of the object")
	obj, code := c.recoveryFlags(fs, inspectUsage, args)
	if code >= 0 {
		return code
	}
	if obj.Key == "" {
		fmt.Fprintln(c.stderr, "s3seal inspect: s3://BUCKET/KEY is required")
		return exitUsage
	}
	obj.VersionID = *version
	st, closeStore, err := c.recoveryStore(ctx)
	if err != nil {
		return c.fail("inspect", err)
	}
	defer closeStore()
	r, err := recovery.Inspect(ctx, st, obj)
	if err != nil {
		return c.fail("inspect", err)
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(r)
	return exitOK
}

// recoveryStore is a client of the store serve would use.
func (c cli) recoveryStore(ctx context.Context) (*store.Client, func(), error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	up, _, closeStore, err := commandUpstream(ctx, cfg, newLogger(c.stderr, cfg.LogLevel))
	if err != nil {
		return nil, nil, err
	}
	st, err := store.New(store.Config{Endpoint: up.url, AccessKey: up.accessKey, SecretKey: up.secretKey, Region: up.region, Timeout: cfg.UpstreamTimeout})
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return st, closeStore, nil
}

// decryptOptions are the flags of s3seal decrypt.
type decryptOptions struct {
	obj                  store.Object
	ciphertext, metadata string
	out                  string
}

func (c cli) decrypt(ctx context.Context, args []string) int {
	var o decryptOptions
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	version := fs.String("version-id", "", "a version of the object")
	fs.StringVar(&o.ciphertext, "ciphertext", "", "a file of the object's stored bytes (offline)")
	fs.StringVar(&o.metadata, "metadata", "", "the JSON s3seal inspect printed for it (offline)")
	fs.StringVar(&o.out, "o", "", "write the plaintext to this file (default: standard output)")
	var code int
	if o.obj, code = c.recoveryFlags(fs, decryptUsage, args); code >= 0 {
		return code
	}
	o.obj.VersionID = *version
	if offline := o.ciphertext != "" || o.metadata != ""; offline == (o.obj.Key != "") || offline && (o.ciphertext == "" || o.metadata == "") {
		fmt.Fprintln(c.stderr, "s3seal decrypt: give s3://BUCKET/KEY, or both -ciphertext and -metadata")
		return exitUsage
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return c.fail("decrypt", err)
	}
	keys, err := recoveryKeys(ctx, cfg)
	if err != nil {
		return c.fail("decrypt", err)
	}
	if err := c.runDecrypt(ctx, o, keys); err != nil {
		return c.fail("decrypt", err)
	}
	return exitOK
}

// recoveryKeys is the configured key service, limited to the configured
// CMKs as serve is.
func recoveryKeys(ctx context.Context, cfg Config) (kms.ObjectKeys, error) {
	ks, err := openKeyService(ctx, cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return kms.ObjectKeys{}, err
	}
	allowed := kms.NewAllowList(ks.resolver, cfg.CMKs()...)
	return kms.ObjectKeys{Keys: kms.WithTimeout(ks.service, cfg.KMSTimeout), KeyID: cfg.KMSKeyID, Allowed: allowed}, allowed.Resolve(ctx)
}

// runDecrypt finds the report and the stored bytes, and decrypts them.
func (c cli) runDecrypt(ctx context.Context, o decryptOptions, keys kms.ObjectKeys) error {
	var r recovery.Report
	var src io.ReadCloser
	if o.obj.Key != "" {
		st, closeStore, err := c.recoveryStore(ctx)
		if err != nil {
			return err
		}
		defer closeStore()
		if r, err = recovery.Inspect(ctx, st, o.obj); err != nil {
			return err
		}
		if src, err = recovery.Open(ctx, st, r); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(o.metadata)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("-metadata %s: %w", o.metadata, err)
		}
		f, err := os.Open(o.ciphertext)
		if err != nil {
			return err
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != r.StoredSize {
			f.Close()
			return fmt.Errorf("-ciphertext %s is not the %d stored bytes -metadata describes", o.ciphertext, r.StoredSize)
		}
		src = f
	}
	defer src.Close()
	return writePlaintext(o.out, c.stdout, func(w io.Writer) error {
		_, err := recovery.Decrypt(ctx, keys, r, src, w)
		return err
	})
}

// writePlaintext has write write to path (through a temporary file renamed
// only on success, so a failure leaves no file) or, for "", to stdout.
func writePlaintext(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
