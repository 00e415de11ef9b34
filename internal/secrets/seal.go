package secrets

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealed is how one version of a secret is stored: its value sealed under
// a data key of its own, and that data key wrapped by a master key.
type Sealed struct {
	// KeyID names the master key that wrapped DataKey.
	KeyID string
	// WrappedKey is nonce || XChaCha20-Poly1305(master, data key).
	WrappedKey []byte
	// Ciphertext is nonce || XChaCha20-Poly1305(data key, value).
	Ciphertext []byte
}

// identity is the additional data of a version's ciphertext: a value opens
// only as the version of the secret it was sealed for. purpose separates
// the data key's wrapping from the value's sealing.
func identity(ref Ref, version int, purpose string) []byte {
	b := []byte("runway-secret/v1")
	for _, s := range []string{purpose, ref.Project, ref.Environment, ref.Service, ref.Key, strconv.Itoa(version)} {
		b = append(b, 0)
		b = append(b, s...)
	}
	return b
}

func sealWith(key, plaintext, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("random nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, ad), nil
}

func openWith(key, sealed, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrTampered
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}

// Seal seals value as version of ref: a new random data key seals the
// value, and mk wraps the data key.
func Seal(mk *MasterKey, ref Ref, version int, value []byte) (Sealed, error) {
	dk := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(dk); err != nil {
		return Sealed{}, fmt.Errorf("random data key: %w", err)
	}
	defer clear(dk)
	ct, err := sealWith(dk, value, identity(ref, version, "value"))
	if err != nil {
		return Sealed{}, err
	}
	wk, err := mk.wrap(dk, ref, version)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{KeyID: mk.ID, WrappedKey: wk, Ciphertext: ct}, nil
}

// Open opens a sealed version of ref with the master key of kr it names.
// A row altered, or moved to another secret or version, is ErrTampered; a
// key id kr does not hold is ErrMasterKey.
func Open(kr *Keyring, ref Ref, version int, s Sealed) ([]byte, error) {
	dk, err := kr.unwrap(s, ref, version)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	v, err := openWith(dk, s.Ciphertext, identity(ref, version, "value"))
	if err != nil {
		return nil, fmt.Errorf("open secret %s version %d: %w", ref, version, err)
	}
	return v, nil
}

// Rewrap returns s with its data key wrapped by to instead of the key of kr
// that wrapped it; the value's ciphertext is unchanged.
func Rewrap(kr *Keyring, to *MasterKey, ref Ref, version int, s Sealed) (Sealed, error) {
	dk, err := kr.unwrap(s, ref, version)
	if err != nil {
		return Sealed{}, err
	}
	defer clear(dk)
	wk, err := to.wrap(dk, ref, version)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{KeyID: to.ID, WrappedKey: wk, Ciphertext: s.Ciphertext}, nil
}

func (k *MasterKey) wrap(dk []byte, ref Ref, version int) ([]byte, error) {
	return sealWith(k.key[:], dk, identity(ref, version, "data-key"))
}

func (kr *Keyring) unwrap(s Sealed, ref Ref, version int) ([]byte, error) {
	mk := kr.keys[s.KeyID]
	if mk == nil {
		return nil, fmt.Errorf("open secret %s version %d: it was sealed with master key %s, which this server does not have (it has %s): %w",
			ref, version, s.KeyID, kr.Current().ID, ErrMasterKey)
	}
	dk, err := openWith(mk.key[:], s.WrappedKey, identity(ref, version, "data-key"))
	if err != nil {
		return nil, fmt.Errorf("open the data key of secret %s version %d: %w", ref, version, err)
	}
	if len(dk) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("open the data key of secret %s version %d: %w", ref, version, errors.Join(ErrTampered, errors.New("wrong length")))
	}
	return dk, nil
}
