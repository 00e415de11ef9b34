package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"testing"

	"golang.org/x/net/http2/hpack"
)

func h2Frame(typ, flags byte, stream uint32, payload []byte) []byte {
	f := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(f[5:], stream)
	return append(f, payload...)
}

func settings(kv ...uint32) []byte {
	var p []byte
	for i := 0; i < len(kv); i += 2 {
		p = binary.BigEndian.AppendUint16(p, uint16(kv[i]))
		p = binary.BigEndian.AppendUint32(p, kv[i+1])
	}
	return h2Frame(0x4, 0, 0, p)
}

func headerBlock(fields ...string) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for i := 0; i < len(fields); i += 2 {
		_ = e.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return b.Bytes()
}

// shimmed reads data through an h2Conn, chunk bytes per underlying read.
func shimmed(data []byte, chunk int) []byte {
	h := newH2Conn(&byteConn{data: data, chunk: chunk}, tls.ConnectionState{})
	out, _ := io.ReadAll(h)
	return out
}

func TestH2ShimSettings(t *testing.T) {
	in := h2Preface + string(settings(4, 100, 3, 10, 4, 65535)) + string(h2Frame(0x6, 0, 0, make([]byte, 8)))
	want := h2Preface + string(settings(3, 10, 4, 65535)) + string(h2Frame(0x6, 0, 0, make([]byte, 8)))
	// The first invalid value of a parameter stays (net/http reports it).
	in2 := h2Preface + string(settings(2, 7, 2, 1))
	want2 := h2Preface + string(settings(2, 7))
	for _, chunk := range []int{0, 1, 5} {
		if got := shimmed([]byte(in), chunk); string(got) != want {
			t.Errorf("chunk %d: got %x\nwant %x", chunk, got, want)
		}
		if got := shimmed([]byte(in2), chunk); string(got) != want2 {
			t.Errorf("chunk %d: got %x\nwant %x", chunk, got, want2)
		}
	}
}

func TestH2ShimConnectionSpecificFields(t *testing.T) {
	ok := headerBlock(":method", "GET", ":path", "/", ":scheme", "https", ":authority", "x", "te", "trailers")
	bad := headerBlock(":method", "GET", ":path", "/", ":scheme", "https", ":authority", "x", "connection", "keep-alive")
	badTE := headerBlock(":method", "GET", ":path", "/", ":scheme", "https", ":authority", "x", "te", "trailers, deflate")
	good := h2Preface + string(h2Frame(0x1, 0x5, 1, ok))
	if got := shimmed([]byte(good), 3); string(got) != good {
		t.Errorf("a valid request changed: %x", got)
	}
	for _, block := range [][]byte{bad, badTE} {
		// Split in HEADERS + CONTINUATION: the frame completing the
		// field is replaced.
		in := h2Preface + string(h2Frame(0x1, 0x1, 1, block[:4])) + string(h2Frame(0x9, 0x4, 1, block[4:])) + string(h2Frame(0x0, 0x1, 1, []byte("x")))
		want := h2Preface + string(h2Frame(0x1, 0x1, 1, block[:4])) + string(h2Refuse) + string(h2Frame(0x0, 0x1, 1, []byte("x")))
		for _, chunk := range []int{0, 2} {
			if got := shimmed([]byte(in), chunk); string(got) != want {
				t.Errorf("chunk %d: got %x\nwant %x", chunk, got, want)
			}
		}
	}
}

// FuzzH2Shim: any byte stream read through the shim reads the same however
// it is cut into reads, never panics, and is passed unchanged when it holds
// neither a repeated setting nor a connection-specific field.
func FuzzH2Shim(f *testing.F) {
	f.Add([]byte(h2Preface+string(settings(4, 100, 4, 200))), uint8(1))
	f.Add([]byte(h2Preface+string(h2Frame(0x1, 0x4, 1, headerBlock(":path", "/", "upgrade", "x")))), uint8(3))
	f.Add([]byte(h2Preface+string(h2Frame(0x1, 0x2c, 1, append([]byte{2, 0, 0, 0, 0, 0}, append(headerBlock(":path", "/"), 0, 0)...)))), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		a := shimmed(data, 0)
		b := shimmed(data, int(chunk%32)+1)
		if !bytes.Equal(a, b) {
			t.Fatalf("cut into reads of %d bytes: %x, else %x", chunk%32+1, b, a)
		}
		if len(a) > len(data)+len(h2Refuse) {
			t.Fatalf("the shim made the stream longer: %d > %d", len(a), len(data))
		}
	})
}
