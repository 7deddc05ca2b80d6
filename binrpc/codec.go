// Package binrpc is the binary RPC protocol of Kamailio's ctl module, the
// one kamcmd speaks: the packet codec (binrpc.h of Kamailio 5.6) and a
// server that answers requests over unix stream, unix datagram, TCP and
// UDP sockets by calling a JSON-RPC dispatcher (kemi's control plane is
// jsonrpc.Server; binrpc translates its JSON results into binrpc records).
// It is a leaf package: standard library and kemi/jsonrpc only.
//
// # Packet
//
// A packet is a header and a body. The header is 0xA1 (magic 0xA, version
// 1), then type<<4 | (len_len-1)<<2 | (cookie_len-1), then the body length
// and the cookie, big-endian in len_len and cookie_len bytes. A request's
// body is the method name (a string record) and the parameters; a reply's
// the result records, a fault's an int code and a string message. A record
// is a tag byte, size<<4 | type, where a size with bit 8 set says the real
// size follows in size&7 bytes; strings carry a terminating 0, ints are
// big-endian with leading zero bytes dropped, doubles are an integer of
// value*1000, and structs and arrays are a start tag and an end tag (bit 8
// set, no length) around their members; a struct member is an AVP record
// (its name) followed by the value.
//
// # JSON to binrpc
//
// A result that is a JSON array is sent as one record per element (as
// Kamailio's handlers add several values); any other value as one record;
// {} and null as none. Objects become structs, arrays inside arrays become
// arrays, and an array inside a struct becomes the member repeated per
// element (binrpc has no arrays in structs). Integers that fit 32 bits are
// ints, other numbers doubles (Kamailio sends longs as doubles), booleans
// ints 0/1, strings strings.
package binrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Packet types.
const (
	TypeRequest = 0
	TypeReply   = 1
	TypeFault   = 3
)

// Record types.
const (
	tInt    = 0
	tStr    = 1
	tDouble = 2
	tStruct = 3
	tArray  = 4
	tAVP    = 5
	tBytes  = 6
)

const magicVersion = 0xA1

// ErrBadPacket is a malformed packet.
var ErrBadPacket = errors.New("binrpc: bad packet")

// Packet is one binrpc message.
type Packet struct {
	Type   int
	Cookie uint32
	Body   []byte
}

// intLen is how many bytes binrpc writes for u (at least 1 in headers).
func intLen(u uint32) int {
	n := 4
	for n > 0 && u&0xff000000 == 0 {
		u <<= 8
		n--
	}
	return n
}

// Marshal encodes the packet with its header.
func (p Packet) Marshal() []byte {
	ll := max(intLen(uint32(len(p.Body))), 1)
	cl := max(intLen(p.Cookie), 1)
	b := make([]byte, 0, 2+ll+cl+len(p.Body))
	b = append(b, magicVersion, byte(p.Type<<4|(ll-1)<<2|(cl-1)))
	for i := ll - 1; i >= 0; i-- {
		b = append(b, byte(uint32(len(p.Body))>>(8*i)))
	}
	for i := cl - 1; i >= 0; i-- {
		b = append(b, byte(p.Cookie>>(8*i)))
	}
	return append(b, p.Body...)
}

// ReadPacket reads one packet from a stream; a body longer than maxBody
// is refused (ErrBadPacket) without being read.
func ReadPacket(r io.Reader, maxBody int) (Packet, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return Packet{}, err
	}
	if h[0] != magicVersion {
		return Packet{}, fmt.Errorf("%w: magic %#x", ErrBadPacket, h[0])
	}
	ll, cl := int(h[1]>>2&3)+1, int(h[1]&3)+1
	if _, err := io.ReadFull(r, h[2:2+ll+cl]); err != nil {
		return Packet{}, unexpected(err)
	}
	n := be(h[2 : 2+ll])
	p := Packet{Type: int(h[1] >> 4), Cookie: be(h[2+ll : 2+ll+cl])}
	if int64(n) > int64(maxBody) {
		return Packet{}, fmt.Errorf("%w: body of %d bytes (limit %d)", ErrBadPacket, n, maxBody)
	}
	p.Body = make([]byte, n)
	if _, err := io.ReadFull(r, p.Body); err != nil {
		return Packet{}, unexpected(err)
	}
	return p, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParsePacket decodes a whole datagram.
func ParsePacket(b []byte) (Packet, error) {
	p, err := ReadPacket(bytes.NewReader(b), len(b))
	if err != nil {
		return Packet{}, fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	return p, nil
}

func be(b []byte) uint32 {
	var u uint32
	for _, c := range b {
		u = u<<8 | uint32(c)
	}
	return u
}

// ParseRequest decodes a request body: the method and its parameters
// (int, string, float64; structs and arrays are refused).
func ParseRequest(body []byte) (method string, params []any, err error) {
	for len(body) > 0 {
		typ, val, rest, err := record(body)
		if err != nil {
			return "", nil, err
		}
		body = rest
		var v any
		switch typ {
		case tInt:
			v = int(int32(be(val)))
		case tStr:
			v = string(bytes.TrimSuffix(val, []byte{0}))
		case tBytes:
			v = string(val)
		case tDouble:
			v = float64(int64(be64(val))) / 1000
		default:
			return "", nil, fmt.Errorf("%w: parameter of record type %d", ErrBadPacket, typ)
		}
		if method == "" && params == nil {
			s, ok := v.(string)
			if !ok || s == "" {
				return "", nil, fmt.Errorf("%w: no method name", ErrBadPacket)
			}
			method, params = s, []any{}
			continue
		}
		params = append(params, v)
	}
	if method == "" {
		return "", nil, fmt.Errorf("%w: empty request", ErrBadPacket)
	}
	return method, params, nil
}

func be64(b []byte) uint64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return u
}

// record splits the first record off b: its type and value bytes.
func record(b []byte) (typ int, val, rest []byte, err error) {
	typ, size := int(b[0]&0xf), int(b[0]>>4)
	b = b[1:]
	if typ != tDouble && size&8 != 0 {
		n := size & 7
		if len(b) < n {
			return 0, nil, nil, fmt.Errorf("%w: truncated record length", ErrBadPacket)
		}
		size, b = int(be(b[:n])), b[n:]
	}
	if len(b) < size {
		return 0, nil, nil, fmt.Errorf("%w: truncated record", ErrBadPacket)
	}
	return typ, b[:size], b[size:], nil
}

// Encoder builds a reply body.
type Encoder struct{ b []byte }

// Bytes returns the body built so far.
func (e *Encoder) Bytes() []byte { return e.b }

// Int adds an int record.
func (e *Encoder) Int(i int32) {
	u := uint32(i)
	n := intLen(u)
	e.b = append(e.b, byte(n<<4|tInt))
	for k := n - 1; k >= 0; k-- {
		e.b = append(e.b, byte(u>>(8*k)))
	}
}

// Double adds a double record (value*1000 as an integer, as Kamailio).
func (e *Encoder) Double(f float64) {
	u := uint64(int64(f * 1000))
	n := 8
	for n > 0 && u&(0xff<<56) == 0 {
		u <<= 8
		n--
	}
	e.b = append(e.b, byte(n<<4|tDouble))
	for ; n > 0; n-- {
		e.b = append(e.b, byte(u>>56))
		u <<= 8
	}
}

// String adds a string record.
func (e *Encoder) String(s string) { e.str(tStr, s) }

// AVP adds a struct member's name; its value is the next record.
func (e *Encoder) AVP(name string) { e.str(tAVP, name) }

func (e *Encoder) str(typ int, s string) {
	l := len(s) + 1
	if l < 8 {
		e.b = append(e.b, byte(l<<4|typ))
	} else {
		n := intLen(uint32(l))
		e.b = append(e.b, byte((n|8)<<4|typ))
		for k := n - 1; k >= 0; k-- {
			e.b = append(e.b, byte(uint32(l)>>(8*k)))
		}
	}
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

// StartStruct, EndStruct, StartArray and EndArray add the tags around a
// struct's members or an array's elements.
func (e *Encoder) StartStruct() { e.b = append(e.b, tStruct) }

// EndStruct ends a struct.
func (e *Encoder) EndStruct() { e.b = append(e.b, 8<<4|tStruct) }

// StartArray starts an array.
func (e *Encoder) StartArray() { e.b = append(e.b, tArray) }

// EndArray ends an array.
func (e *Encoder) EndArray() { e.b = append(e.b, 8<<4|tArray) }

// Fault returns a fault body: code and message.
func Fault(code int, msg string) []byte {
	var e Encoder
	e.Int(int32(code))
	e.String(msg)
	return e.b
}

// FromJSON encodes a JSON result as reply records (see the package doc).
func FromJSON(result []byte) ([]byte, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(result))
	d.UseNumber()
	v, err := decodeOrdered(d)
	if err != nil {
		return nil, err
	}
	var e Encoder
	switch x := v.(type) {
	case nil:
	case []any:
		for _, el := range x {
			e.value(el)
		}
	case object:
		if len(x) > 0 {
			e.value(x)
		}
	default:
		e.value(x)
	}
	return e.b, nil
}

// object is a JSON object with its members in document order.
type object []member

type member struct {
	name string
	val  any
}

func decodeOrdered(d *json.Decoder) (any, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := object{}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(d)
				if err != nil {
					return nil, err
				}
				o = append(o, member{k.(string), v})
			}
			_, err := d.Token()
			return o, err
		case '[':
			a := []any{}
			for d.More() {
				v, err := decodeOrdered(d)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := d.Token()
			return a, err
		}
		return nil, fmt.Errorf("binrpc: unexpected %v", t)
	default:
		return t, nil
	}
}

// value encodes one value outside a struct's member position.
func (e *Encoder) value(v any) {
	switch x := v.(type) {
	case nil:
		e.String("")
	case bool:
		if x {
			e.Int(1)
		} else {
			e.Int(0)
		}
	case string:
		e.String(x)
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil && i >= math.MinInt32 && i <= math.MaxInt32 {
			e.Int(int32(i))
		} else if f, err := x.Float64(); err == nil {
			e.Double(f)
		} else {
			e.String(string(x))
		}
	case object:
		e.StartStruct()
		for _, m := range x {
			e.member(m.name, m.val)
		}
		e.EndStruct()
	case []any:
		e.StartArray()
		for _, el := range x {
			e.value(el)
		}
		e.EndArray()
	}
}

// member encodes a struct member: arrays repeat the name per element,
// nulls are left out.
func (e *Encoder) member(name string, v any) {
	switch x := v.(type) {
	case nil:
		return
	case []any:
		for _, el := range x {
			if sub, ok := el.([]any); ok {
				b, _ := json.Marshal(plain(sub))
				el = string(b)
			}
			e.member(name, el)
		}
		return
	}
	e.AVP(name)
	e.value(v)
}

// plain turns ordered values back into encoding/json's for re-marshalling.
func plain(v any) any {
	switch x := v.(type) {
	case object:
		m := make(map[string]any, len(x))
		for _, mb := range x {
			m[mb.name] = plain(mb.val)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = plain(el)
		}
		return out
	}
	return v
}
