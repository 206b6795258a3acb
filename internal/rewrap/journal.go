package rewrap

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/s3seal/s3seal/envelope"
)

// Journal is what a run leaves for the next one, in the data dir:
//
//   - the wrapped data keys a rotation in place produced (a line of 32 hex
//     digits each: half a SHA-256; a wrapped key is not secret, but there
//     is no need to keep it twice), so that a run after an interruption
//     skips the objects that carry one, since a wrapped key under a CMK's
//     current material looks like any other to anyone but the key service;
//   - the objects a rotation in place is about to copy: "S <hex key>
//     <digest of its wrapped key then>", so that an object whose copy a
//     kill cut off between the copy and its record is not done twice: on
//     resume, an object whose wrapped key is no longer the one noted has
//     been copied (or written anew through s3seal, which also wraps under
//     current material);
//   - the key histories being replayed (versions.go): "R <hex key>" when a
//     replay starts and "D <hex key>" when the key's current version is
//     right again, so that a replay cut off by a crash is found and not
//     made permanent by the next run.
//
// Lines are appended as things happen; the file is removed when a run
// completes without failures, so that the next rotation starts afresh. An
// exclusive lock keeps two runs off one journal.
type Journal struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	done    map[string]bool
	started map[string]string // hex key to the digest its object had when its copy began
	replays map[string]bool   // keys whose replay an earlier run started and never ended
}

// OpenJournal opens (or creates, 0600) the journal at path and reads what
// an earlier run recorded there.
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{path: path, done: map[string]bool{}, started: map[string]string{}, replays: map[string]bool{}}
	b, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("rewrap journal: %w", err)
	default:
		err := j.read(b)
		b.Close()
		if err != nil {
			return nil, fmt.Errorf("rewrap journal %s: %w", path, err)
		}
	}
	if j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("rewrap journal: %w", err)
	}
	if err := syscall.Flock(int(j.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		j.f.Close()
		return nil, fmt.Errorf("rewrap journal %s: another rewrap of this bucket and prefix is running (%w)", path, err)
	}
	return j, nil
}

func (j *Journal) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "S "):
			key, d, _ := strings.Cut(line[2:], " ")
			j.started[key] = d
		case strings.HasPrefix(line, "R "):
			j.replays[line[2:]] = true
		case strings.HasPrefix(line, "D "):
			delete(j.replays, line[2:])
		default:
			j.done[line] = true
		}
	}
	return sc.Err()
}

// Interrupted reports whether an earlier run started replaying key's
// history and was cut off before its current version was right again.
func (j *Journal) Interrupted(key string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.replays[hex.EncodeToString([]byte(key))]
}

// StartReplay and EndReplay bracket the replay of key's history.
func (j *Journal) StartReplay(key string) error {
	return j.append("R " + hex.EncodeToString([]byte(key)))
}
func (j *Journal) EndReplay(key string) error {
	return j.append("D " + hex.EncodeToString([]byte(key)))
}

func (j *Journal) append(line string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("rewrap journal: %w", err)
	}
	return nil
}

// Resumed is how many objects an earlier run recorded as rewrapped.
func (j *Journal) Resumed() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.done)
}

func digest(m envelope.Metadata) string {
	d := sha256.Sum256(append([]byte(m.KeyID+"\x00"), m.WrappedKey...))
	return hex.EncodeToString(d[:16])
}

// Done reports whether the object at key, which has metadata m now, was
// rewrapped by this run or a recorded earlier one, or has changed since an
// earlier run began copying it.
func (j *Journal) Done(key string, m envelope.Metadata) bool {
	d := digest(m)
	j.mu.Lock()
	defer j.mu.Unlock()
	before, began := j.started[hex.EncodeToString([]byte(key))]
	return j.done[d] || began && before != d
}

// Starting notes that the object at key, with metadata m, is about to be
// copied.
func (j *Journal) Starting(key string, m envelope.Metadata) error {
	return j.append("S " + hex.EncodeToString([]byte(key)) + " " + digest(m))
}

// Record notes that an object now carries metadata m.
func (j *Journal) Record(m envelope.Metadata) error {
	d := digest(m)
	j.mu.Lock()
	j.done[d] = true
	j.mu.Unlock()
	return j.append(d)
}

// Close closes the journal, and removes it when the run it served is
// complete (nothing left for a resumed run to skip).
func (j *Journal) Close(complete bool) error {
	err := j.f.Close()
	if complete {
		err = errors.Join(err, os.Remove(j.path))
	}
	return err
}
