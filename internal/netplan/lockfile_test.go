package netplan

import (
	"os"
	"strings"
	"testing"
)

func TestParseLockErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`region "a/b" { }`, "a/b has no cidr"},
		{`region "a" { cidr = "10.0.0.0/16" }`, "want 2 part(s)"},
		{`region "a/b" { cidr = "10.0.0.1/16" }`, "is not an IPv4 network range"},
		{`region "a/b" { cidr = 12 }`, "must be a quoted CIDR range"},
		{`region "a/b" { cidr = var.x }`, "must be a quoted CIDR range"},
		{`zone "a" { cidr = "10.0.0.0/16" }`, `unexpected block "zone"`},
		{"region \"a/b\" {\n cidr = \"10.0.0.0/16\"\n public = \"10.0.0.0/20\"\n}", `:3: unexpected attribute "public"`},
		{`x = 1`, `unexpected attribute "x"`},
		{`region "a/b" {`, "read runway.lock.hcl"},
	}
	for _, tt := range tests {
		_, err := ParseLock([]byte(tt.src), LockFileName)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseLock(%q) = %v, want %q", tt.src, err, tt.want)
		}
	}
}

func TestLockRoundTrip(t *testing.T) {
	src, err := os.ReadFile("testdata/lock.golden.hcl")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLock(src, "lock.golden.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(l.Bytes()); got != string(src) {
		t.Errorf("round trip differs:\n%s", got)
	}
}

func FuzzParseLock(f *testing.F) {
	if src, err := os.ReadFile("testdata/lock.golden.hcl"); err == nil {
		f.Add(src)
	}
	f.Add([]byte(`region "a/b" { cidr = "10.0.0.0/16" }`))
	f.Add([]byte("region \"a/b\" {\n cidr = \"10.0.0.0/16\"\n zone \"z\" {\n  cidr = \"10.0.0.0/18\"\n  public = \"10.0.0.0/20\"\n }\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		l, err := ParseLock(src, LockFileName)
		if err != nil {
			return
		}
		// Whatever parses renders to a file that parses to the same lock.
		l2, err := ParseLock(l.Bytes(), LockFileName)
		if err != nil {
			t.Fatalf("rendered lock does not parse: %v\n%s", err, l.Bytes())
		}
		if string(l2.Bytes()) != string(l.Bytes()) {
			t.Fatalf("render not stable:\n%s\n---\n%s", l.Bytes(), l2.Bytes())
		}
	})
}
