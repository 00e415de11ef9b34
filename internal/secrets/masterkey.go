package secrets

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/runwayhq/runway/internal/fsutil"
)

// The master key's sources.
const (
	// MasterKeyEnv holds the master key (base64 of 32 bytes) when set; the
	// key file is then not read.
	MasterKeyEnv = "RUNWAY_MASTER_KEY"
	// MasterKeyFile is the key file's name in the server's data dir.
	MasterKeyFile = "master.key"
	// nextKeyFile holds the new key while a rotation runs: a crash leaves
	// both files, and the next start keeps the one the rows use.
	nextKeyFile = "master.key.next"
)

// MasterKey wraps data keys. Its ID (a digest of the key) is stored beside
// every data key it wraps.
type MasterKey struct {
	ID  string
	key [32]byte
}

// NewMasterKey returns a random master key.
func NewMasterKey() (*MasterKey, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("random master key: %w", err)
	}
	return newKey(k), nil
}

func newKey(k [32]byte) *MasterKey {
	sum := sha256.Sum256(append([]byte("runway master key id\x00"), k[:]...))
	return &MasterKey{ID: "mk-" + hex.EncodeToString(sum[:8]), key: k}
}

// ParseMasterKey reads a master key as written in RUNWAY_MASTER_KEY or the
// key file: the base64 (standard or URL alphabet, padded or not) of 32
// bytes, surrounding white space ignored. Errors never quote the input.
func ParseMasterKey(text []byte) (*MasterKey, error) {
	s := string(bytes.TrimSpace(text))
	if s == "" {
		return nil, errors.New("the master key is empty: want the base64 of 32 random bytes (such as the output of `openssl rand -base64 32`)")
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("the master key is not base64: want the base64 of 32 random bytes (such as the output of `openssl rand -base64 32`)")
	}
	if len(raw) != 32 {
		n := len(raw)
		clear(raw)
		return nil, fmt.Errorf("the master key is %d bytes, want 32: give the base64 of 32 random bytes (such as the output of `openssl rand -base64 32`)", n)
	}
	var k [32]byte
	copy(k[:], raw)
	clear(raw)
	return newKey(k), nil
}

// Encode is the key as the key file holds it: base64 and a newline.
func (k *MasterKey) Encode() []byte {
	return []byte(base64.StdEncoding.EncodeToString(k.key[:]) + "\n")
}

// Keyring holds the master keys a vault opens with; new data keys are
// wrapped by Current.
type Keyring struct {
	keys    map[string]*MasterKey
	current *MasterKey
	// Source says where the current key comes from: RUNWAY_MASTER_KEY or
	// the key file's path.
	Source string
	// dir is the data dir of a key file source, "" for the environment.
	dir string
}

// NewKeyring holds only k (tests and tools).
func NewKeyring(k *MasterKey) *Keyring {
	return &Keyring{keys: map[string]*MasterKey{k.ID: k}, current: k, Source: "memory"}
}

// Current is the key new data keys are wrapped with.
func (kr *Keyring) Current() *MasterKey { return kr.current }

// FromEnvironment reports whether the key comes from RUNWAY_MASTER_KEY.
func (kr *Keyring) FromEnvironment() bool { return kr.Source == MasterKeyEnv }

// LoadKeyring finds the master key: envValue (RUNWAY_MASTER_KEY) when not
// empty, else DATA_DIR/master.key, which is created (0600) when missing and
// no secret is stored yet. inUse are the key ids the stored rows name; every
// one must be a key the keyring holds, else the error (ErrMasterKey) says
// which key is needed, and nothing is written.
func LoadKeyring(dataDir, envValue string, inUse []string) (*Keyring, error) {
	if envValue != "" {
		k, err := ParseMasterKey([]byte(envValue))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", MasterKeyEnv, err)
		}
		kr := &Keyring{keys: map[string]*MasterKey{k.ID: k}, current: k, Source: MasterKeyEnv}
		return kr, kr.check(inUse)
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	kr := &Keyring{keys: map[string]*MasterKey{}, Source: path, dir: dataDir}
	cur, err := readKeyFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(inUse) > 0:
		return nil, fmt.Errorf("master key file %s is missing, and the stored secrets were sealed with master key %s: restore the file from a backup, or set %s to that key; nothing was changed: %w",
			path, strings.Join(inUse, ", "), MasterKeyEnv, ErrMasterKey)
	case errors.Is(err, fs.ErrNotExist):
		if cur, err = NewMasterKey(); err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(path, cur.Encode(), 0o600); err != nil {
			return nil, fmt.Errorf("create master key file: %w", err)
		}
	case err != nil:
		return nil, err
	}
	kr.keys[cur.ID], kr.current = cur, cur
	// A rotation that did not finish: keep the key the rows use.
	nextPath := filepath.Join(dataDir, nextKeyFile)
	next, err := readKeyFile(nextPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		kr.keys[next.ID] = next
		switch {
		case len(inUse) > 0 && !slices.Contains(inUse, cur.ID) && slices.Contains(inUse, next.ID):
			// The re-wrap committed; the rename did not happen.
			if err := os.Rename(nextPath, path); err != nil {
				return nil, fmt.Errorf("finish master key rotation: %w", err)
			}
			if err := fsutil.SyncDir(dataDir); err != nil {
				return nil, err
			}
			delete(kr.keys, cur.ID)
			kr.current = next
		case !slices.Contains(inUse, next.ID):
			// The re-wrap did not commit: the new key opens nothing.
			delete(kr.keys, next.ID)
			if err := os.Remove(nextPath); err != nil {
				return nil, fmt.Errorf("remove unused %s: %w", nextPath, err)
			}
		}
	}
	return kr, kr.check(inUse)
}

func readKeyFile(path string) (*MasterKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	defer clear(b)
	k, err := ParseMasterKey(b)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// check refuses a keyring that lacks a key the rows use.
func (kr *Keyring) check(inUse []string) error {
	var lack []string
	for _, id := range inUse {
		if kr.keys[id] == nil {
			lack = append(lack, id)
		}
	}
	if len(lack) == 0 {
		return nil
	}
	sort.Strings(lack)
	return fmt.Errorf("the master key from %s is %s, but the stored secrets were sealed with master key %s: start the server with that key (%s or %s); nothing was changed: %w",
		kr.Source, kr.current.ID, strings.Join(lack, ", "), MasterKeyEnv, MasterKeyFile, ErrMasterKey)
}

// stageNext writes the next key beside the current one, before the
// re-wrap: a crash at any point leaves a key that opens the rows.
func (kr *Keyring) stageNext(k *MasterKey) error {
	return fsutil.WriteFileAtomic(filepath.Join(kr.dir, nextKeyFile), k.Encode(), 0o600)
}

// promote makes k, staged and now wrapping every row, the key file's key.
func (kr *Keyring) promote(k *MasterKey) error {
	if err := os.Rename(filepath.Join(kr.dir, nextKeyFile), filepath.Join(kr.dir, MasterKeyFile)); err != nil {
		return fmt.Errorf("install the new master key: %w", err)
	}
	if err := fsutil.SyncDir(kr.dir); err != nil {
		return err
	}
	kr.keys = map[string]*MasterKey{k.ID: k}
	kr.current = k
	return nil
}

// unstage removes a staged key whose re-wrap failed.
func (kr *Keyring) unstage() {
	_ = os.Remove(filepath.Join(kr.dir, nextKeyFile))
}
