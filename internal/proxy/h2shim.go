package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"

	"golang.org/x/net/http2/hpack"
)

// The h2 frame shim: an HTTP/2 connection over TLS is read through an
// h2Conn before net/http's HTTP/2 server sees it, to mend where that server
// departs from RFC 9113 (h2spec --strict finds each; TestH2Spec runs it):
//
//   - a SETTINGS frame that gives one parameter twice is refused by net/http
//     with PROTOCOL_ERROR, where the RFC says to process the values in order:
//     the shim rewrites it keeping, per parameter, the last value (or the
//     first invalid one, so the error net/http reports stays the RFC's);
//   - a request with a connection-specific field (Connection, Keep-Alive,
//     Proxy-Connection, Transfer-Encoding, Upgrade) or TE other than
//     "trailers" is malformed (§8.2.2) and must be a PROTOCOL_ERROR, where
//     net/http answers 400: the shim decodes every header block with its own
//     HPACK decoder, a mirror of the server's (same table size, fed the same
//     blocks in the same order, so its dynamic table never drifts), and puts
//     in place of the frame that completed such a field a HEADERS frame on
//     stream 0, which net/http's framer refuses as a connection error: it
//     sends GOAWAY PROTOCOL_ERROR and closes (RFC 9113 §5.4.1 lets a stream
//     error be treated as a connection error). Nothing of that request
//     reaches a handler.
//
// Frames are passed as whole frames, at most h2MaxFrame long (the server
// advertises that size: http.HTTP2Config.MaxReadFrameSize); a longer one,
// or anything the shim cannot follow, and the shim passes the rest of the
// connection through unread, as net/http then ends it.

// h2MaxFrame is SETTINGS_MAX_FRAME_SIZE's initial value, the largest frame
// the server accepts.
const h2MaxFrame = 16384

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h2Refuse is a HEADERS frame on stream 0 (END_HEADERS, no payload).
var h2Refuse = []byte{0, 0, 0, 0x1, 0x4, 0, 0, 0, 0}

// h2Conn is an h2 connection over TLS read through the shim. It does not
// have a ConnectionState method on purpose: net/http serves it as a clear
// HTTP/2 connection, and Request.TLS comes from its context.
type h2Conn struct {
	net.Conn
	cs      tls.ConnectionState
	buf     []byte // [r:v) checked; [v:w) not yet
	r, v, w int
	preface int  // preface bytes passed so far
	raw     bool // pass everything through unread
	refuse  []byte

	dec       *hpack.Decoder
	forbidden bool
}

func newH2Conn(c net.Conn, cs tls.ConnectionState) *h2Conn {
	h := &h2Conn{Conn: c, cs: cs, buf: make([]byte, 2*(9+h2MaxFrame))}
	h.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if connectionSpecific(f) {
			h.forbidden = true
		}
	})
	return h
}

func connectionSpecific(f hpack.HeaderField) bool {
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	case "te":
		return f.Value != "trailers"
	}
	return false
}

func (h *h2Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if h.r < h.v {
			n := copy(p, h.buf[h.r:h.v])
			h.r += n
			return n, nil
		}
		if len(h.refuse) > 0 {
			n := copy(p, h.refuse)
			h.refuse = h.refuse[n:]
			return n, nil
		}
		if h.raw {
			if h.v < h.w {
				h.v = h.w
				continue
			}
			return h.Conn.Read(p)
		}
		if h.v < h.w && h.check() {
			continue
		}
		if err := h.fill(); err != nil {
			return 0, err
		}
	}
}

func (h *h2Conn) fill() error {
	if h.r == h.v && h.v > 0 {
		n := copy(h.buf, h.buf[h.v:h.w])
		h.r, h.v, h.w = 0, 0, n
	}
	n, err := h.Conn.Read(h.buf[h.w:])
	h.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// check passes the preface and whole frames; false when it needs more.
func (h *h2Conn) check() bool {
	progress := false
	for h.v < h.w && !h.raw && h.refuse == nil {
		if h.preface < len(h2Preface) {
			n := min(len(h2Preface)-h.preface, h.w-h.v)
			h.preface += n
			h.v += n
			progress = true
			continue
		}
		if h.w-h.v < 9 {
			return progress
		}
		hdr := h.buf[h.v : h.v+9]
		length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		if length > h2MaxFrame {
			h.raw = true // net/http answers FRAME_SIZE_ERROR
			return true
		}
		if h.w-h.v < 9+length {
			return progress
		}
		typ, flags := hdr[3], hdr[4]
		stream := binary.BigEndian.Uint32(hdr[5:9]) & (1<<31 - 1)
		payload := h.buf[h.v+9 : h.v+9+length]
		switch typ {
		case 0x4: // SETTINGS
			if flags&0x1 == 0 && stream == 0 && length%6 == 0 {
				length = h.dedupSettings(length)
			}
		case 0x1, 0x9: // HEADERS, CONTINUATION
			frag, ok := headerFragment(typ, flags, payload)
			if !ok {
				h.raw = true // net/http refuses the frame itself
				return true
			}
			if _, err := h.dec.Write(frag); err != nil {
				h.raw = true // net/http's decoder fails the same way
				return true
			}
			if flags&0x4 != 0 { // END_HEADERS
				if err := h.dec.Close(); err != nil {
					h.raw = true
					return true
				}
			}
			if h.forbidden {
				// The frame is dropped, the rest unread: net/http gets
				// h2Refuse, then whatever follows (it stops reading).
				h.refuse = h2Refuse
				h.raw = true
				n := copy(h.buf[h.v:], h.buf[h.v+9+length:h.w])
				h.w = h.v + n
				return true
			}
		}
		h.v += 9 + length
		progress = true
	}
	return progress
}

// headerFragment is the header block fragment of a HEADERS or CONTINUATION
// payload (without padding and priority).
func headerFragment(typ, flags byte, payload []byte) ([]byte, bool) {
	if typ == 0x9 {
		return payload, true
	}
	pad := 0
	if flags&0x8 != 0 { // PADDED
		if len(payload) < 1 {
			return nil, false
		}
		pad = int(payload[0])
		payload = payload[1:]
	}
	if flags&0x20 != 0 { // PRIORITY
		if len(payload) < 5 {
			return nil, false
		}
		payload = payload[5:]
	}
	if pad > len(payload) {
		return nil, false
	}
	return payload[:len(payload)-pad], true
}

// dedupSettings rewrites, in place, the SETTINGS frame at v (payload of
// length bytes) keeping one value per parameter, and returns the new length.
func (h *h2Conn) dedupSettings(length int) int {
	payload := h.buf[h.v+9 : h.v+9+length]
	n := length / 6
	if n < 2 {
		return length
	}
	// keep[i]: setting i is the one kept for its parameter.
	keep := make([]bool, n)
	chosen := map[uint16]int{}
	dup := false
	for i := range n {
		id := binary.BigEndian.Uint16(payload[6*i:])
		j, seen := chosen[id]
		if seen {
			dup = true
			if !validSetting(id, binary.BigEndian.Uint32(payload[6*j+2:])) {
				continue // the first invalid value stays
			}
			keep[j] = false
		}
		chosen[id] = i
		keep[i] = true
	}
	if !dup {
		return length
	}
	out := 0
	for i := range n {
		if keep[i] {
			copy(payload[out:out+6], payload[6*i:6*i+6])
			out += 6
		}
	}
	// Close the gap before the next frame.
	m := copy(h.buf[h.v+9+out:], h.buf[h.v+9+length:h.w])
	h.w = h.v + 9 + out + m
	h.buf[h.v], h.buf[h.v+1], h.buf[h.v+2] = byte(out>>16), byte(out>>8), byte(out)
	return out
}

// validSetting: RFC 9113 §6.5.2's bounds (an invalid value is an error).
func validSetting(id uint16, val uint32) bool {
	switch id {
	case 0x2: // ENABLE_PUSH
		return val <= 1
	case 0x4: // INITIAL_WINDOW_SIZE
		return val <= 1<<31-1
	case 0x5: // MAX_FRAME_SIZE
		return val >= 16384 && val <= 1<<24-1
	}
	return true
}
