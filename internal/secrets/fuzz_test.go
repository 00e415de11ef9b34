package secrets

import (
	"bytes"
	"regexp"
	"testing"
)

// FuzzParseMasterKey: the master key comes from a file or the environment;
// any input either parses to a key whose encoding parses back to the same
// key, or fails with one of the fixed messages (a length at most), which
// therefore never quote the input.
func FuzzParseMasterKey(f *testing.F) {
	length := regexp.MustCompile(`is [0-9]+ bytes`)
	fixed := map[string]bool{}
	for _, in := range []string{"", "!", "c2hvcnQ="} {
		_, err := ParseMasterKey([]byte(in))
		fixed[length.ReplaceAllString(err.Error(), "is N bytes")] = true
	}
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("  not base64 at all  "))
	f.Add([]byte("c2hvcnQ="))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParseMasterKey(in)
		if err != nil {
			if !fixed[length.ReplaceAllString(err.Error(), "is N bytes")] {
				t.Fatalf("an error that is not one of the fixed messages (it may quote the input): %v", err)
			}
			return
		}
		back, err := ParseMasterKey(k.Encode())
		if err != nil || back.ID != k.ID || back.key != k.key {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzOpen: a sealed value altered anywhere never opens.
func FuzzOpen(f *testing.F) {
	k, err := NewMasterKey()
	if err != nil {
		f.Fatal(err)
	}
	kr := NewKeyring(k)
	ref := Ref{Project: "p", Environment: "e", Key: "K"}
	s, err := Seal(k, ref, 1, []byte("value"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.WrappedKey, s.Ciphertext)
	f.Add([]byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, wk, ct []byte) {
		v, err := Open(kr, ref, 1, Sealed{KeyID: k.ID, WrappedKey: wk, Ciphertext: ct})
		if err == nil && (!bytes.Equal(wk, s.WrappedKey) || !bytes.Equal(ct, s.Ciphertext)) {
			t.Fatalf("an altered row opened to %d bytes", len(v))
		}
	})
}
