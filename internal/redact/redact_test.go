package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	secrets := []string{
		"RUNWAY_TOKEN=rwy_0123456789abcdef0123456789abcdef",
		"Authorization: Bearer abcdefghijklmnop",
		"DATABASE_PASSWORD=hunter2hunter2",
		`{"api_key": "k-123456789"}`,
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"token ghp_0123456789abcdefghijklmnopqrstuvwxyz",
		"xoxb-1234567890-abcdefghij",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"agent token 3f1c9a0b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
	}
	for _, in := range secrets {
		out := String(in)
		if !strings.Contains(out, Mark) {
			t.Errorf("String(%q) = %q: nothing redacted", in, out)
		}
		for _, part := range []string{"rwy_0123", "abcdefghijklmnop", "hunter2", "k-123456789", "AKIAIOSFODNN7EXAMPLE", "ghp_0123", "xoxb-1234567890", "eyJhbGci", "3f1c9a0b8e7d", "MIIEpAIBAAKCAQEA"} {
			if strings.Contains(in, part) && strings.Contains(out, part) {
				t.Errorf("String(%q) = %q still holds %q", in, out, part)
			}
		}
	}
	keep := []string{
		"migrating to version 1.4.2 (commit 4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b)",
		"image sha256:3f1c9a0b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3",
		"FATAL: DATABASE_URL is not set",
		"applied 12 migrations in 1.2s",
	}
	for _, in := range keep {
		if out := String(in); out != in {
			t.Errorf("String(%q) = %q: harmless text changed", in, out)
		}
	}
}

func TestTail(t *testing.T) {
	long := strings.Repeat("line of output\n", 1000) + "PASSWORD=abc123456 failed\n"
	out := Tail(long, 200)
	if len(out) > 260 || !strings.HasPrefix(out, "[... earlier output cut]\n") || !strings.Contains(out, "PASSWORD="+Mark) {
		t.Fatalf("Tail = %q", out)
	}
}

func TestValues(t *testing.T) {
	got := Values("url=postgres://u:pw@db/x pw again: pw-long", map[string]string{"DB": "postgres://u:pw@db/x", "PW": "pw-long", "EMPTY": ""})
	if got != "url="+Mark+" pw again: "+Mark {
		t.Fatalf("got %q", got)
	}
}

func TestOutput(t *testing.T) {
	out := strings.Repeat("x", 100) + "\nDB=hunter2-long-value\nrwy_abcdefghijklmnop0123\ndone\n"
	read := func(n int) (string, error) {
		if n > len(out) {
			return out, nil
		}
		return out[len(out)-n:], nil
	}
	got, err := Output(read, map[string]string{"DB": "hunter2-long-value"}, 40)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "hunter2") || strings.Contains(got, "rwy_abc") || len(got) > 40 || !strings.HasSuffix(got, "done\n") {
		t.Fatalf("Output = %q", got)
	}
	// A value the limit cuts at its start is not kept in part: the margin
	// reads the whole of it.
	got, _ = Output(read, map[string]string{"DB": "hunter2-long-value"}, len("long-value\nrwy_abcdefghijklmnop0123\ndone\n"))
	if strings.Contains(got, "long-value") {
		t.Fatalf("a cut value kept in part: %q", got)
	}
}
