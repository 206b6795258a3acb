package rewrap

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/s3seal/s3seal/envelope"
)

// Journal remembers the wrapped data keys a rotation in place produced, so
// that a run after an interruption skips the objects that carry one: a
// wrapped key under a CMK's current material looks like any other to
// anyone but the key service. It holds SHA-256 digests only (a wrapped key
// is not secret, but there is no need to keep it twice), one per line,
// appended as each object is done; the file is removed when a run
// completes without failures, so the next rotation starts afresh.
type Journal struct {
	path string
	mu   sync.Mutex
	f    *os.File
	done map[string]bool
}

// OpenJournal opens (or creates, 0600) the journal at path and reads what
// an earlier run recorded there.
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{path: path, done: map[string]bool{}}
	b, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("rewrap journal: %w", err)
	default:
		sc := bufio.NewScanner(b)
		for sc.Scan() {
			j.done[sc.Text()] = true
		}
		b.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("rewrap journal %s: %w", path, err)
		}
	}
	if j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("rewrap journal: %w", err)
	}
	return j, nil
}

// Resumed is how many objects an earlier run recorded.
func (j *Journal) Resumed() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.done)
}

func digest(m envelope.Metadata) string {
	d := sha256.Sum256(append([]byte(m.KeyID+"\x00"), m.WrappedKey...))
	return hex.EncodeToString(d[:16])
}

// Done reports whether an object with metadata m was rewrapped by this
// run or a recorded earlier one.
func (j *Journal) Done(m envelope.Metadata) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[digest(m)]
}

// Record notes that an object now carries metadata m.
func (j *Journal) Record(m envelope.Metadata) error {
	d := digest(m)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done[d] = true
	if _, err := j.f.WriteString(d + "\n"); err != nil {
		return fmt.Errorf("rewrap journal: %w", err)
	}
	return nil
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
