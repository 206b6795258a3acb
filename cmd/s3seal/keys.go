package main

// `s3seal keys`: manage the embedded keyring in DATA_DIR/keyring.json.
//
// A running `s3seal serve` syncs with the keyring file every filePoll
// (serve.go, 2 seconds): changes made here reach it without a restart.
// Keys of an AWS KMS are managed with AWS's own tools: with
// S3SEAL_KMS_PROVIDER=aws, keys only lists and describes the CMKs s3seal is
// configured with.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/s3seal/s3seal/internal/datadir"
	"github.com/s3seal/s3seal/internal/sharedfile"

	"github.com/s3seal/s3seal/envelope/awskms"
	"github.com/s3seal/s3seal/envelope/keyring"
	"github.com/s3seal/s3seal/envelope/kms"

	"github.com/s3seal/s3seal/envelope"
)

const keysUsage = `Usage: s3seal keys COMMAND [flags] [args]

Manage the embedded keyring (S3SEAL_DATA_DIR/keyring.json). A running
s3seal serve on the same data dir uses a change within 2 seconds: a disabled
key stops new writes and reads at once.

Commands:
  list                                     list keys
  describe ID                              one key
  create [-description D] [-alias alias/X] create a key
  rotate ID                                add new key material (old stays for decryption)
  enable-rotation ID [-period 365d]        rotate automatically every period (a running
                                           serve rotates keys that are due)
  disable-rotation ID                      stop rotating automatically
  rotation-status ID                       whether, how often and when a key rotates
  disable ID                               refuse all use of a key
  enable ID                                allow a disabled key again
  schedule-deletion ID [-days N]           delete a key after N days (7 to 30, default 30)
  cancel-deletion ID                       cancel a scheduled deletion (the key stays disabled)
  alias ALIAS ID                           name a key alias/NAME
  unalias ALIAS                            remove an alias
  import -material-file F [-description D] [-alias alias/X]
                                           create a key from 32 bytes of your own
                                           (raw, hex or base64 in the file)

ID is a key id or an alias. Every command takes -json for JSON output.

Every command checks everything before it changes anything: a refused
command (an alias taken or malformed, a key in the wrong state, material
of the wrong size) changes nothing, and create makes the key and its alias
in one change. Only create and import start a keyring where there is none
(and the data dir, 0700); the others refuse a data dir without one, most
likely a mistyped S3SEAL_DATA_DIR.

With S3SEAL_KMS_PROVIDER=aws, list shows the CMKs s3seal is configured with
(S3SEAL_KMS_KEY_ID, S3SEAL_KMS_DECRYPT_KEY_IDS) and describe any CMK, as the
KMS describes them (state, aliases, description, creation date, origin,
rotation); manage them with AWS's tools (aws kms ...).
`

// keysCmd is one keys subcommand: its positional arguments and what it does.
type keysCmd struct {
	args int // number of positional arguments
	run  func(k *keysEnv, args []string) error
	// check refuses, before the keyring is opened, what run would refuse
	// whatever the keyring holds, so that a refusal changes nothing.
	check func(k *keysEnv, args []string) error
	// creates: the command may start a keyring (and its data dir); the
	// others refuse a missing one, which is most likely a mistyped
	// S3SEAL_DATA_DIR.
	creates bool
}

// keysEnv is what a keys subcommand works with.
type keysEnv struct {
	ring    *keyring.Keyring
	out     io.Writer
	json    bool
	changed bool      // a change was made: say when a running serve uses it
	now     time.Time // for the tense of dates
	// material is import's key material, read and checked before the
	// keyring is opened; cleared once used.
	material []byte

	// per-command flags
	description  string
	alias        string
	days         int
	materialFile string
	period       string
	rotation     time.Duration // period, parsed
}

func (c cli) keys(ctx context.Context, args []string) int {
	k := &keysEnv{out: c.stdout, now: time.Now()}
	commands := keysCommands()
	name, pos, code, done := c.dispatch("keys", keysUsage, args, func(name string) (int, bool) {
		cmd, ok := commands[name]
		return cmd.args, ok
	}, func(name string, args []string) ([]string, error) {
		return parseKeysFlags(name, k, args, c.stderr)
	})
	if done {
		return code
	}
	cmd := commands[name]
	cfg, err := c.keysConfig()
	if err != nil {
		return c.fail("keys", err)
	}
	if cfg.KMSProvider == providerAWS {
		return c.keysAWS(ctx, cfg, k, name, pos)
	}
	if cmd.check != nil {
		if err := cmd.check(k, pos); err != nil {
			return c.fail("keys "+name, err)
		}
	}
	defer clear(k.material)
	// A keyring started here may be a mistyped S3SEAL_DATA_DIR's: say so.
	newRing := cmd.creates && !fileExists(filepath.Join(cfg.DataDir, datadir.KeyringFile))
	if k.ring, err = openKeysRing(cfg.DataDir, cmd.creates); err != nil {
		return c.fail("keys "+name, err)
	}
	if err := cmd.run(k, pos); err != nil {
		return c.fail("keys "+name, k.explain(err, pos))
	}
	switch {
	case k.changed && newRing:
		c.noteNewKeyring(k.ring.Path(), cfg.DataDir)
	case k.changed:
		c.noteChange(k.ring.Path())
	}
	return exitOK
}

// openKeysRing opens the data dir's keyring; only a command that creates
// a key may start one.
func openKeysRing(dir string, creates bool) (*keyring.Keyring, error) {
	if creates {
		return datadir.CreateKeyring(dir)
	}
	return datadir.OpenKeyring(dir, "run `s3seal keys create` to start a keyring there")
}

// noteChange tells the operator when a running serve sees a change to the
// shared file at path.
func (c cli) noteChange(path string) {
	fmt.Fprintln(c.stderr, "note: a running s3seal serve on this data dir uses this change within 2 seconds")
	c.warnForeignOwner(path)
}

// noteNewKeyring is noteChange for a keyring the command started: no serve
// uses it yet, and it may be in a mistyped S3SEAL_DATA_DIR (dir).
func (c cli) noteNewKeyring(path, dir string) {
	fmt.Fprintf(c.stderr, "note: started a new keyring at %s (S3SEAL_DATA_DIR=%s): no s3seal serve uses it yet; "+
		"if you meant an existing data dir, set S3SEAL_DATA_DIR to it\n", absPath(path), dir)
	c.warnForeignOwner(path)
}

// warnForeignOwner warns when a serve may not see a change at all: the
// file at path is now owned by another user than its data dir (a change
// made with sudo).
func (c cli) warnForeignOwner(path string) {
	if fileUID, dirUID, foreign := sharedfile.ForeignOwner(path); foreign {
		fmt.Fprintf(c.stderr, "warning: %s is now owned by uid %d but its data dir by uid %d: an s3seal running as uid %d cannot read it "+
			"(fix: chown %d %s, and make changes as that user)\n", path, fileUID, dirUID, dirUID, dirUID, path)
	}
}

// dispatch reads `s3seal GROUP NAME [flags] [args]` for a group of
// subcommands: help, the command's name (nargs says how many positional
// arguments it takes, and false for no such command) and its positional
// arguments, with flags parsed by parse wherever they stand. done says to
// exit now with code.
func (c cli) dispatch(group, usage string, args []string, nargs func(string) (int, bool),
	parse func(name string, args []string) ([]string, error)) (name string, pos []string, code int, done bool) {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return "", nil, exitUsage, true
	}
	if isHelp(args[0]) {
		fmt.Fprint(c.stdout, usage)
		return "", nil, exitOK, true
	}
	name = args[0]
	want, ok := nargs(name)
	if !ok {
		fmt.Fprintf(c.stderr, "s3seal %s: unknown command %q\n\n%s", group, name, usage)
		return "", nil, exitUsage, true
	}
	pos, err := parse(name, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return "", nil, exitOK, true
	}
	if err == nil && len(pos) != want {
		err = fmt.Errorf("%s takes %d argument(s), got %d (s3seal %s -h)", name, want, len(pos), group)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "s3seal %s %s: %v\n", group, name, err)
		return "", nil, exitUsage, true
	}
	return name, pos, exitOK, false
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// keysConfig checks only the settings keys needs, so the keyring can be
// managed while the rest of the serve configuration is still unfinished.
func (c cli) keysConfig() (Config, error) {
	cfg, err := c.parseConfig()
	if err != nil {
		return Config{}, err
	}
	if cfg.KMSProvider == providerKeyring && cfg.DataDir == "" {
		return Config{}, errors.New("configuration: S3SEAL_DATA_DIR is empty")
	}
	return cfg, nil
}

// keysAWS lists or describes AWS KMS CMKs; everything else is for AWS's
// own tools.
func (c cli) keysAWS(ctx context.Context, cfg Config, k *keysEnv, name string, pos []string) int {
	ids := cfg.CMKs()
	switch {
	case name == "describe":
		ids = pos
	case name != "list":
		return c.fail("keys "+name, fmt.Errorf("S3SEAL_KMS_PROVIDER is aws: s3seal keys only lists and describes its CMKs; %s them with AWS's tools (aws kms ...)", name))
	case cfg.KMSKeyID == "":
		return c.fail("keys list", errors.New("S3SEAL_KMS_KEY_ID is not set: no CMKs are configured; set it (and S3SEAL_KMS_DECRYPT_KEY_IDS) "+
			"to the CMKs s3seal uses, or describe any CMK with s3seal keys describe ID"))
	}
	svc, err := loadAWSKMS(ctx, cfg, newLogger(c.stderr, "warn"))
	if err != nil {
		return c.fail("keys", err)
	}
	rows := make([]keyJSON, 0, len(ids))
	for _, id := range ids {
		info, err := svc.Describe(ctx, id)
		if err != nil {
			return c.fail("keys "+name, fmt.Errorf("%s: %w", id, err))
		}
		rows = append(rows, cmkRow(info))
	}
	if err := k.printRows(rows); err != nil {
		return c.fail("keys "+name, err)
	}
	return exitOK
}

// parseKeysFlags parses flags wherever they stand among the positional
// arguments (`rotate ID -json` and `rotate -json ID` both work), which the
// flag package alone does not do.
func parseKeysFlags(name string, k *keysEnv, args []string, stderr io.Writer) ([]string, error) {
	fs := flag.NewFlagSet("s3seal keys "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&k.json, "json", false, "print JSON")
	switch name {
	case "create":
		fs.StringVar(&k.description, "description", "", "description of the key")
		fs.StringVar(&k.alias, "alias", "", "alias/NAME for the new key")
	case "import":
		fs.StringVar(&k.description, "description", "", "description of the key")
		fs.StringVar(&k.alias, "alias", "", "alias/NAME for the new key")
		fs.StringVar(&k.materialFile, "material-file", "", "file with the 32-byte key material (raw, hex or base64)")
	case "schedule-deletion":
		fs.IntVar(&k.days, "days", 30, "waiting period in days, 7 to 30")
	case "enable-rotation":
		fs.StringVar(&k.period, "period", "365d", "rotation period: Nd (days) or a Go duration (12h, 90m)")
	}
	return parseInterleaved(fs, args)
}

// parseInterleaved parses fs's flags wherever they stand among the
// positional arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func keysCommands() map[string]keysCmd {
	return map[string]keysCmd{
		"list":              {args: 0, run: keysList},
		"describe":          {args: 1, run: keysDescribe},
		"create":            {args: 0, run: keysCreate, check: checkNewKey, creates: true},
		"rotate":            {args: 1, run: keysRotate},
		"disable":           {args: 1, run: keysSetState((*keyring.Keyring).DisableKey)},
		"enable":            {args: 1, run: keysSetState((*keyring.Keyring).EnableKey)},
		"schedule-deletion": {args: 1, run: keysScheduleDeletion, check: checkDays},
		"cancel-deletion":   {args: 1, run: keysSetState((*keyring.Keyring).CancelKeyDeletion)},
		"alias":             {args: 2, run: keysAlias, check: checkAliasArg},
		"unalias":           {args: 1, run: keysUnalias},
		"import":            {args: 0, run: keysImport, check: checkImport, creates: true},
		"enable-rotation":   {args: 1, run: keysEnableRotation, check: checkPeriod},
		"disable-rotation":  {args: 1, run: keysDisableRotation},
		"rotation-status":   {args: 1, run: keysRotationStatus},
	}
}

func checkPeriod(k *keysEnv, _ []string) error {
	period, err := parsePeriod(k.period)
	if err != nil {
		return fmt.Errorf("-period: %w", err)
	}
	if period < keyring.MinRotationPeriod {
		return fmt.Errorf("-period: %q is shorter than %s", k.period, keyring.MinRotationPeriod)
	}
	k.rotation = period
	return nil
}

func keysEnableRotation(k *keysEnv, args []string) error {
	info, err := k.ring.EnableKeyRotation(args[0], k.rotation)
	if err != nil {
		return err
	}
	k.changed = true
	return k.printRotation(info)
}

func keysDisableRotation(k *keysEnv, args []string) error {
	info, err := k.ring.DisableKeyRotation(args[0])
	if err != nil {
		return err
	}
	k.changed = true
	return k.printRotation(info)
}

func keysRotationStatus(k *keysEnv, args []string) error {
	info, err := k.ring.DescribeKey(args[0])
	if err != nil {
		return err
	}
	return k.printRotation(info)
}

// parsePeriod reads a rotation period: "365d" (days, as AWS states
// periods) or a Go duration.
func parsePeriod(s string) (time.Duration, error) {
	const maxDays = 2560 // AWS KMS's longest period
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > maxDays {
			return 0, fmt.Errorf("%q: want a whole number of days from 1 to %d, as in 365d", s, maxDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d > maxDays*24*time.Hour {
		return 0, fmt.Errorf("%q: longer than %d days", s, maxDays)
	}
	return d, err
}

// formatPeriod says a period in days when it is whole days.
func formatPeriod(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// printRotation prints a key's rotation status, as AWS's
// get-key-rotation-status does.
func (k *keysEnv) printRotation(i keyring.KeyInfo) error {
	if k.json {
		return writeJSON(k.out, rotationJSON(i))
	}
	r := rotationJSON(i)
	fmt.Fprintf(k.out, "key %s: automatic rotation %s", termSafe(i.ID), map[bool]string{true: "enabled", false: "disabled"}[r.Enabled])
	if r.Enabled {
		fmt.Fprintf(k.out, ", every %s", r.Period)
		if r.Next.After(k.now) {
			fmt.Fprintf(k.out, ", next rotation on %s", r.Next.UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintf(k.out, ", due since %s (a running s3seal serve rotates it within 2 seconds)", r.Next.UTC().Format(time.RFC3339))
		}
	}
	if !r.Last.IsZero() {
		fmt.Fprintf(k.out, "; last rotated on %s", r.Last.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(k.out, "; %d material version(s)\n", i.Versions)
	return nil
}

type keyRotationJSON struct {
	ID       string    `json:"id"`
	Enabled  bool      `json:"rotation_enabled"`
	Period   string    `json:"rotation_period,omitempty"`
	Next     time.Time `json:"next_rotation,omitzero"`
	Last     time.Time `json:"last_rotated,omitzero"`
	Versions int       `json:"versions"`
}

func rotationJSON(i keyring.KeyInfo) keyRotationJSON {
	r := keyRotationJSON{ID: i.ID, Enabled: i.RotationPeriod > 0, Next: i.NextRotation, Last: i.LastRotated, Versions: i.Versions}
	if r.Enabled {
		r.Period = formatPeriod(i.RotationPeriod)
	}
	return r
}

func keysList(k *keysEnv, _ []string) error {
	return k.print(k.ring.ListKeys()...)
}

func keysDescribe(k *keysEnv, args []string) error {
	return k.printKey(args[0])
}

// checkNewKey checks create's (and import's) -alias and -description.
func checkNewKey(k *keysEnv, _ []string) error {
	if k.alias != "" {
		if err := keyring.CheckAlias(k.alias); err != nil {
			return fmt.Errorf("-alias: %w", err)
		}
	}
	if err := keyring.CheckDescription(k.description); err != nil {
		return fmt.Errorf("-description: %w", err)
	}
	// AWS allows them; refused here because they would break the lines
	// of the table.
	if i := strings.IndexFunc(k.description, unicode.IsControl); i >= 0 {
		return fmt.Errorf("-description: invalid description: control character %U at byte %d; use one line of text", []rune(k.description[i:])[0], i)
	}
	return nil
}

// keysCreate makes the key and its alias in one change of the keyring
// file: an alias that is taken makes no key.
func keysCreate(k *keysEnv, _ []string) error {
	info, err := k.ring.CreateKeyWith(keyring.KeySpec{Description: k.description, Alias: k.alias})
	if err != nil {
		return err
	}
	k.changed = true
	return k.print(info)
}

func keysRotate(k *keysEnv, args []string) error {
	info, err := k.ring.RotateKey(args[0])
	if err != nil {
		return err
	}
	k.changed = true
	return k.print(info)
}

// keysSetState wraps the keyring's state changes that return only an error.
func keysSetState(change func(*keyring.Keyring, string) error) func(*keysEnv, []string) error {
	return func(k *keysEnv, args []string) error {
		if err := change(k.ring, args[0]); err != nil {
			return err
		}
		k.changed = true
		return k.printKey(args[0])
	}
}

// checkDays is AWS KMS's bound on the waiting period, checked before the
// keyring is opened.
func checkDays(k *keysEnv, _ []string) error {
	if k.days < keyring.MinPendingDays || k.days > keyring.MaxPendingDays {
		return fmt.Errorf("-days %d: the waiting period is %d to %d days", k.days, keyring.MinPendingDays, keyring.MaxPendingDays)
	}
	return nil
}

func keysScheduleDeletion(k *keysEnv, args []string) error {
	if _, err := k.ring.ScheduleKeyDeletion(args[0], k.days); err != nil {
		return err
	}
	k.changed = true
	return k.printKey(args[0])
}

func checkAliasArg(k *keysEnv, args []string) error {
	k.alias = args[0]
	return keyring.CheckAlias(args[0])
}

func keysAlias(k *keysEnv, args []string) error {
	if err := k.ring.CreateAlias(args[0], args[1]); err != nil {
		return err
	}
	k.changed = true
	return k.printKey(args[0])
}

func keysUnalias(k *keysEnv, args []string) error {
	info, err := k.ring.DescribeKey(args[0])
	if err != nil {
		return err
	}
	if err := k.ring.DeleteAlias(args[0], ""); err != nil {
		return err
	}
	k.changed = true
	return k.printKey(info.ID)
}

// checkImport reads and checks the material and the new key's flags.
func checkImport(k *keysEnv, args []string) error {
	if k.materialFile == "" {
		return errors.New("-material-file is required: a file with 32 bytes of key material (make one with: openssl rand 32 > FILE)")
	}
	raw, err := os.ReadFile(k.materialFile)
	if err != nil {
		return fmt.Errorf("-material-file: %w", err)
	}
	defer clear(raw)
	if k.material, err = decodeMaterial(raw); err != nil {
		return fmt.Errorf("-material-file %s: %w", k.materialFile, err)
	}
	return checkNewKey(k, args)
}

// keysImport makes the key, and its alias, from the material checkImport read.
func keysImport(k *keysEnv, _ []string) error {
	info, err := k.ring.ImportKeyWith(k.material, keyring.KeySpec{Description: k.description, Alias: k.alias})
	if err != nil {
		return err
	}
	k.changed = true
	return k.print(info)
}

// decodeMaterial accepts key material as 32 raw bytes (`openssl rand 32`),
// or as hex (`openssl rand -hex 32`) or base64 (`openssl rand -base64 32`)
// text, since text survives copying between machines better than binary.
func decodeMaterial(raw []byte) ([]byte, error) {
	if len(raw) == envelope.DataKeySize {
		return bytes.Clone(raw), nil
	}
	text := strings.TrimSpace(string(raw))
	if b, err := hex.DecodeString(text); err == nil && len(b) == envelope.DataKeySize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil && len(b) == envelope.DataKeySize {
		return b, nil
	}
	return nil, fmt.Errorf("%d bytes, want exactly %d bytes of key material: raw (openssl rand 32), hex (openssl rand -hex 32) "+
		"or base64 (openssl rand -base64 32)", len(raw), envelope.DataKeySize)
}

// explain turns a keyring refusal into what an operator reads: what is
// wrong and the command that fixes it. args are the command's: the last
// one names the key whose state may be at fault (alias ALIAS ID: the
// target).
func (k *keysEnv) explain(err error, args []string) error {
	var ke *kms.KMSError
	if !errors.As(err, &ke) || ke.Cause == nil {
		return err
	}
	ref := ""
	if len(args) > 0 {
		ref = args[len(args)-1]
	}
	switch {
	case errors.Is(err, kms.ErrKeyNotFound):
		return fmt.Errorf("%v in %s: s3seal keys list shows the keys and aliases there", ke.Cause, k.ring.Path())
	case errors.Is(err, kms.ErrKeyDisabled):
		return fmt.Errorf("%v; fix: %s", ke.Cause, k.stateFix(ref))
	case ke.Code == "AlreadyExistsException": // the KMS API's code for it: keyring/errors.go
		return fmt.Errorf("%v; fix: choose another alias, or free this one first: s3seal keys unalias %s", ke.Cause, k.alias)
	}
	// The cause alone: the operation's name and the KMS API's error code
	// are for API clients.
	return ke.Cause
}

// stateFix says how to make the key ref names usable again.
func (k *keysEnv) stateFix(ref string) string {
	info, err := k.ring.DescribeKey(ref)
	if err != nil {
		return "s3seal keys list shows the keys' states"
	}
	switch info.State {
	case kms.KeyDisabled:
		return fmt.Sprintf("s3seal keys enable %s, then try again", ref)
	case kms.KeyPendingDeletion:
		return fmt.Sprintf("s3seal keys cancel-deletion %s (the key stays disabled), then s3seal keys enable %s; or use another key", ref, ref)
	case kms.KeyPendingImport:
		return "import the key's material first (the KMS API's GetParametersForImport and ImportKeyMaterial), or use another key"
	}
	return "s3seal keys describe " + ref + " shows its state"
}

// printKey prints the key keyID names, as it is now.
func (k *keysEnv) printKey(keyID string) error {
	info, err := k.ring.DescribeKey(keyID)
	if err != nil {
		return err
	}
	return k.print(info)
}

// keyJSON is a key in -json output and a row of the table, from the
// keyring or AWS KMS; neither holds key material.
type keyJSON struct {
	ID           string       `json:"id"`
	ARN          string       `json:"arn,omitempty"`
	Aliases      []string     `json:"aliases"`
	Description  string       `json:"description"`
	Created      time.Time    `json:"created"`
	State        kms.KeyState `json:"state"`
	Origin       string       `json:"origin"`
	Versions     int          `json:"versions"`
	DeletionDate time.Time    `json:"deletion_date,omitzero"`
	Rotation     string       `json:"rotation_period,omitempty"`
	NextRotation time.Time    `json:"next_rotation,omitzero"`
}

func (k *keysEnv) print(infos ...keyring.KeyInfo) error {
	rows := make([]keyJSON, 0, len(infos))
	for _, i := range infos {
		rows = append(rows, keyringRow(i))
	}
	return k.printRows(rows)
}

func (k *keysEnv) printRows(rows []keyJSON) error {
	if k.json {
		return writeJSON(k.out, rows)
	}
	return printKeysTable(k.out, rows, k.now)
}

// writeJSON writes v indented. encoding/json escapes C0 control characters
// but not DEL, the C1 controls (U+009B is CSI to some terminals) or other
// non-printables such as bidi overrides and isolates (U+202E, U+2066 to
// U+2069), which reorder the line as shown; a description from the KMS API
// may hold any of them: those are escaped too (as UTF-16, JSON's \u form,
// a surrogate pair beyond U+FFFF), which decodes to the same text.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	var out strings.Builder
	for _, r := range string(b) {
		if r == 0x7f || r > 0x7f && !unicode.IsPrint(r) {
			if hi, lo := utf16.EncodeRune(r); hi != utf8.RuneError {
				fmt.Fprintf(&out, `\u%04x\u%04x`, hi, lo)
			} else {
				fmt.Fprintf(&out, `\u%04x`, r)
			}
			continue
		}
		out.WriteRune(r)
	}
	out.WriteByte('\n')
	_, err = io.WriteString(w, out.String())
	return err
}

// termSafe makes a string from the keyring or a KMS safe to print to a
// terminal: a description may come from a client of the KMS API, so
// control characters (escape sequences, \r) and other non-printables
// (bidi overrides, invalid UTF-8) are shown escaped, as Go writes them.
func termSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func keyringRow(i keyring.KeyInfo) keyJSON {
	return keyJSON{ID: i.ID, Aliases: nonNil(i.Aliases), Description: i.Description, Created: i.Created, State: i.State,
		Origin: string(i.Origin), Versions: i.Versions, DeletionDate: i.DeletionDate, Rotation: rotationJSON(i).Period, NextRotation: i.NextRotation}
}

func cmkRow(i awskms.CMKInfo) keyJSON {
	r := keyJSON{ID: i.ID, ARN: i.ARN, Aliases: nonNil(i.Aliases), Description: i.Description, Created: i.Created, State: i.State,
		Origin: i.Origin, DeletionDate: i.DeletionDate, NextRotation: i.NextRotation}
	if i.RotationUnknown {
		r.Rotation = "unknown"
	}
	if i.RotationEnabled {
		r.Rotation = "enabled"
		if i.RotationPeriodDays > 0 {
			r.Rotation = strconv.Itoa(i.RotationPeriodDays) + "d"
		}
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dated says when t is, in the right tense at now: future before a date
// to come ("deletion on"), past before one gone by ("deleted on").
func dated(t, now time.Time, future, past string) string {
	if t.After(now) {
		return future + " " + t.UTC().Format(time.DateOnly)
	}
	return past + " " + t.UTC().Format(time.DateOnly)
}

func printKeysTable(w io.Writer, rows []keyJSON, now time.Time) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tORIGIN\tVERSIONS\tROTATION\tCREATED\tALIASES\tDESCRIPTION")
	for _, r := range rows {
		state, versions, rotation := string(r.State), "-", orDash(r.Rotation)
		if !r.DeletionDate.IsZero() {
			state += " (" + dated(r.DeletionDate, now, "deletion on", "deleted on") + ")"
		}
		if !r.NextRotation.IsZero() {
			rotation += " (" + dated(r.NextRotation, now, "next on", "due since") + ")"
		}
		if r.Versions > 0 {
			versions = strconv.Itoa(r.Versions)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termSafe(r.ID), termSafe(state), termSafe(r.Origin), versions, termSafe(rotation),
			r.Created.UTC().Format(time.RFC3339), termSafe(orDash(strings.Join(r.Aliases, ","))), termSafe(orDash(r.Description)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
