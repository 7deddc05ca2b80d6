package rtpengine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The ng protocol's bencode: Kamailio's bencode.c writes a dictionary's
// entries in the order they were added (not sorted), so dict keeps them
// in order.

type entry struct {
	key string
	val any // string, int, []string, *dict
}

type dict struct{ e []entry }

func (d *dict) add(k string, v any) { d.e = append(d.e, entry{k, v}) }

func (d *dict) encode(b []byte) []byte {
	b = append(b, 'd')
	for _, e := range d.e {
		b = encStr(b, e.key)
		b = encode(b, e.val)
	}
	return append(b, 'e')
}

func encStr(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	return append(append(b, ':'), s...)
}

func encode(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return encStr(b, v)
	case int:
		b = append(b, 'i')
		b = strconv.AppendInt(b, int64(v), 10)
		return append(b, 'e')
	case []string:
		b = append(b, 'l')
		for _, s := range v {
			b = encStr(b, s)
		}
		return append(b, 'e')
	case *[]string:
		return encode(b, *v)
	case *dict:
		return v.encode(b)
	}
	return b
}

var errBencode = errors.New("invalid bencode")

// decode reads one value: string, int64, []any or map[string]any.
func decode(b []byte) (any, []byte, error) { return decodeValue(b, false) }

// decodeValue reads one value; with ordered, dictionaries are *dict (their
// entries in the order sent) and lists are never nil, else map[string]any.
func decodeValue(b []byte, ordered bool) (any, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errBencode
	}
	switch c := b[0]; {
	case c == 'i':
		i := 1
		for i < len(b) && b[i] != 'e' {
			i++
		}
		if i >= len(b) {
			return nil, nil, errBencode
		}
		n, err := strconv.ParseInt(string(b[1:i]), 10, 64)
		if err != nil {
			return nil, nil, errBencode
		}
		return n, b[i+1:], nil
	case c == 'l':
		var out []any
		if ordered {
			out = []any{}
		}
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			v, rest, err := decodeValue(b, ordered)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, v)
			b = rest
		}
		if len(b) == 0 {
			return nil, nil, errBencode
		}
		return out, b[1:], nil
	case c == 'd':
		var m map[string]any
		var od *dict
		if ordered {
			od = &dict{}
		} else {
			m = map[string]any{}
		}
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			k, rest, err := decodeValue(b, false)
			if err != nil {
				return nil, nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, nil, errBencode
			}
			v, rest, err := decodeValue(rest, ordered)
			if err != nil {
				return nil, nil, err
			}
			if ordered {
				od.add(ks, v)
			} else {
				m[ks] = v
			}
			b = rest
		}
		if len(b) == 0 {
			return nil, nil, errBencode
		}
		if ordered {
			return od, b[1:], nil
		}
		return m, b[1:], nil
	case c >= '0' && c <= '9':
		i := 0
		for i < len(b) && b[i] != ':' {
			i++
		}
		n, err := strconv.Atoi(string(b[:i]))
		if err != nil || i+1+n > len(b) || n < 0 {
			return nil, nil, errBencode
		}
		return string(b[i+1 : i+1+n]), b[i+1+n:], nil
	}
	return nil, nil, errBencode
}

// decodeDict decodes a reply that must be a dictionary.
func decodeDict(b []byte) (map[string]any, error) {
	v, _, err := decode(b)
	if err != nil {
		return nil, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, errBencode
	}
	return d, nil
}

// decodeOrdered reads one value keeping a dictionary's entries in order
// (*dict with string, int64, []any and *dict values), for printing a
// reply as JSON in the order rtpengine sent it.
func decodeOrdered(b []byte) (any, []byte, error) { return decodeValue(b, true) }

// jsonString is cJSON's print_string: ", \, and control characters
// escaped, anything else as is.
func jsonString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 32 {
				b = append(b, []byte(fmt.Sprintf("\\u%04x", c))...)
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// toJSON prints v as srjson (cJSON) does: unformatted, or formatted
// with tabs (objects one entry a line, arrays on one line).
func toJSON(b []byte, v any, pretty bool, depth int) []byte {
	switch v := v.(type) {
	case string:
		return jsonString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
				if pretty {
					b = append(b, ' ')
				}
			}
			b = toJSON(b, x, pretty, depth+1)
		}
		return append(b, ']')
	case *dict:
		b = append(b, '{')
		if pretty {
			b = append(b, '\n')
		}
		for i, e := range v.e {
			if pretty {
				b = append(b, strings.Repeat("\t", depth+1)...)
			}
			b = jsonString(b, e.key)
			b = append(b, ':')
			if pretty {
				b = append(b, '\t')
			}
			b = toJSON(b, e.val, pretty, depth+1)
			if i < len(v.e)-1 {
				b = append(b, ',')
			}
			if pretty {
				b = append(b, '\n')
			}
		}
		if pretty {
			b = append(b, strings.Repeat("\t", depth)...)
		}
		return append(b, '}')
	}
	return b
}
