package ksr

import (
	"strconv"
	"strings"
)

// QUnspecified is Kamailio's Q_UNSPECIFIED: no q value.
const QUnspecified = -1

// ParseQ is Kamailio's str2q: a q value ("0", "1", "1.0", "0.5", ".25",
// leading blanks allowed) as thousandths; digits beyond the third decimal
// are ignored, not rounded. ok is false for anything else (empty, above 1,
// a bad character, a missing decimal).
func ParseQ(s string) (q int, ok bool) {
	const (
		stStart = iota
		st0
		st1
		st0Pt
		st1Pt
		st1Pt0
		st0PtN
	)
	state, digits, order := stStart, 1, 100
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case stStart:
			switch c {
			case ' ', '\t':
			case '0':
				q, state = 0, st0
			case '1':
				q, state = 1000, st1
			case '.':
				state = st0Pt
			default:
				return 0, false
			}
		case st0:
			switch c {
			case '0':
			case '.':
				state = st0Pt
			case '1':
				q, state = 1000, st1
			default:
				return 0, false
			}
		case st1:
			if c != '.' {
				return 0, false
			}
			state = st1Pt
		case st0Pt:
			if c < '0' || c > '9' {
				return 0, false
			}
			q = int(c-'0') * order
			order /= 10
			state = st0PtN
		case st1Pt:
			if c != '0' {
				return 0, false
			}
			state = st1Pt0
		case st1Pt0:
			if c != '0' {
				return 0, false
			}
		case st0PtN:
			if c < '0' || c > '9' {
				return 0, false
			}
			if digits <= 3 {
				q += int(c-'0') * order
				order /= 10
				digits++
			}
		}
	}
	switch state {
	case stStart, st0Pt, st1Pt:
		return 0, false
	}
	return q, true
}

// QString is Kamailio's q2str: "1", "0", or "0." and the digits without
// trailing zeros.
func QString(q int) string {
	switch {
	case q >= 1000:
		return "1"
	case q <= 0:
		return "0"
	}
	return strings.TrimRight("0."+strconv.Itoa(1000 + q)[1:], "0")
}
