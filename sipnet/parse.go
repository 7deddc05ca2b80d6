package sipnet

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// Parse parses one whole SIP message (a datagram, or a stream message whose
// end is known) as sipgo's sip.ParseMessage does, with far fewer
// allocations: the result is the same *sip.Request or *sip.Response, value
// for value (reflect.DeepEqual) and byte for byte (String), or the same
// error.
//
// The fast path copies the datagram once, takes every string as a substring
// of that copy, and puts the message with its common typed headers and the
// backing arrays of their parameters into one allocation; the header order
// slice is one more, each Route/Record-Route and each header past the
// arena's slots one more. Every slice handed out is capacity-limited, so an
// append by later code copies instead of overwriting a neighbour. Whatever
// the fast path does not know it gives exactly sipgo's result for (folded
// lines, comma-separated values in Via, Contact, Route or Record-Route,
// non-SIP URI schemes, Refer-To, Referred-By, any error) goes to sipgo's
// parser, so that a message parses to the same value, or fails with the
// same error, whichever path takes it. sipnet/parse_test.go checks both
// paths against each other over a corpus and FuzzParse.
//
// The parse functions below mirror sipgo v1.7.3's (sip/parse_*.go,
// BSD-2-Clause, Copyright (c) 2022 Emir Aganovic) state by state, their
// quirks included; sipgo's own exported helpers (UnmarshalHeaderParams,
// HeaderParams.Add, ASCIIToLower) are called where they do not allocate.
func Parse(data []byte) (sip.Message, error) {
	m, _, err := parse(data, nil)
	return m, err
}

// parse is Parse that also returns a request's arena when the fast path
// took it (from arenas; nil: a new one), for Request.Recycle.
func parse(data []byte, arenas *arenaPool) (sip.Message, *reqArena, error) {
	if m, a := parseFast(data, arenas); m != nil {
		return m, a, nil
	}
	m, err := sip.ParseMessage(data)
	return m, nil, err
}

// maxLines is the most header lines the fast path takes.
const maxLines = 32

// hdrArena holds a message's common headers and the backing array of their
// parameters. A header past its slots is allocated on its own.
type hdrArena struct {
	via     [2]sip.ViaHeader
	from    sip.FromHeader
	to      sip.ToHeader
	contact *sip.ContactHeader // the reply arena's slot; nil in a request's
	cseq    sip.CSeqHeader
	callID  sip.CallIDHeader
	ctype   sip.ContentTypeHeader
	maxFwd  sip.MaxForwardsHeader
	cl      [2]sip.ContentLengthHeader
	gen     [3]genericHeader
	kv      []sip.HeaderKV // kvBuf, then chunks of kvChunk when it runs low
	kvBuf   [8]sip.HeaderKV
	nvia    uint8
	ngen    uint8
	ncl     uint8
	nkv     int32
	used    uint8
}

const (
	usedFrom = 1 << iota
	usedTo
	usedContact
	usedCSeq
	usedCallID
	usedCType
	usedMaxFwd
)

type reqArena struct {
	req sip.Request
	h   hdrArena
}

// arenaPool holds the arenas of requests whose memory was given back
// (Request.Recycle), zeroed: a busy server parses its next requests into
// memory that is still in the CPU's caches instead of fresh memory the
// allocator must zero and the collector sweep. Each Server has one.
type arenaPool struct{ p sync.Pool }

// get returns a zeroed arena: a recycled one, or a new one.
func (ap *arenaPool) get() *reqArena {
	if ap != nil {
		if a, ok := ap.p.Get().(*reqArena); ok {
			return a
		}
	}
	return new(reqArena)
}

// put zeroes a and keeps it for get.
func (ap *arenaPool) put(a *reqArena) {
	*a = reqArena{}
	ap.p.Put(a)
}

type resArena struct {
	res     sip.Response
	h       hdrArena
	contact sip.ContactHeader
}

// The arenas' sizes are chosen to fit the 1,536-byte size class with the
// allocator's 8-byte header (parse_test.go checks them): a request has no
// Contact slot (OPTIONS often has no Contact), a reply has one.

// The header kinds sipgo's default header parsers know (sip/parse_header.go).
const (
	kindGeneric = iota
	kindVia
	kindFrom
	kindTo
	kindCallID
	kindCSeq
	kindContact
	kindMaxFwd
	kindCL
	kindCType
	kindRoute
	kindRecordRoute
	kindOther // refer-to, referred-by: left to sipgo
)

// headerKind classifies a trimmed header name as sipgo's lookup does (ASCII
// lower case, compact forms).
func headerKind(name string) int {
	if len(name) == 1 {
		switch lowerASCII(name[0]) {
		case 'v':
			return kindVia
		case 'f':
			return kindFrom
		case 't':
			return kindTo
		case 'i':
			return kindCallID
		case 'm':
			return kindContact
		case 'l':
			return kindCL
		case 'c':
			return kindCType
		}
		return kindGeneric
	}
	switch len(name) {
	case 2:
		if foldEq(name, "to") {
			return kindTo
		}
	case 3:
		if foldEq(name, "via") {
			return kindVia
		}
	case 4:
		if foldEq(name, "from") {
			return kindFrom
		}
		if foldEq(name, "cseq") {
			return kindCSeq
		}
	case 5:
		if foldEq(name, "route") {
			return kindRoute
		}
	case 7:
		if foldEq(name, "call-id") {
			return kindCallID
		}
		if foldEq(name, "contact") {
			return kindContact
		}
	case 8:
		if foldEq(name, "refer-to") {
			return kindOther
		}
	case 11:
		if foldEq(name, "referred-by") {
			return kindOther
		}
	case 12:
		if foldEq(name, "max-forwards") {
			return kindMaxFwd
		}
		if foldEq(name, "content-type") {
			return kindCType
		}
		if foldEq(name, "record-route") {
			return kindRecordRoute
		}
	case 14:
		if foldEq(name, "content-length") {
			return kindCL
		}
	}
	return kindGeneric
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldEq reports whether s lowered (ASCII only) is lower.
func foldEq(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// parseFast returns the message, or nil when sipgo must decide, and a
// request's arena (nil for a reply), for Request.Recycle. A request's
// arena comes from arenas (nil: a new one).
func parseFast(data []byte, arenas *arenaPool) (sip.Message, *reqArena) {
	if len(data) == 0 || len(data) > sip.ParseMaxMessageLength {
		return nil, nil
	}
	startEnd := bytes.IndexByte(data, '\r')
	if startEnd < 0 || startEnd+1 >= len(data) || data[startEnd+1] != '\n' {
		return nil, nil
	}

	// One copy of the datagram: the string every value is cut from (within
	// the header lines), and the body's bytes.
	buf := make([]byte, len(data))
	copy(buf, data)
	s := unsafe.String(&buf[0], len(buf))

	parts, ok := split3(s[:startEnd])
	if !ok {
		return nil, nil
	}
	var (
		msg   sip.Message
		arena *reqArena
		a     *hdrArena
		req   *sip.Request
		resp  *sip.Response
	)
	switch {
	case isRequest(parts):
		arena = arenas.get()
		a, req, msg = &arena.h, &arena.req, &arena.req
		a.kv = a.kvBuf[:]
		req.Method = sip.RequestMethod(strings.ToUpper(parts[0]))
		if !a.parseURI(parts[1], &req.Recipient) || req.Recipient.Wildcard {
			return nil, nil
		}
		req.SipVersion = parts[2]
	case isResponse(parts):
		code, err := strconv.ParseUint(parts[1], 10, 16)
		if err != nil {
			return nil, nil
		}
		ra := new(resArena)
		a, resp, msg = &ra.h, &ra.res, &ra.res
		a.contact = &ra.contact
		a.kv = a.kvBuf[:]
		resp.SipVersion = parts[0]
		resp.StatusCode = int(code)
		resp.Reason = parts[2]
	default:
		return nil, nil
	}

	// The header lines, each parsed as it is found.
	var order [maxLines + 1]sip.Header
	var firstVia, firstRoute, firstRR sip.Header
	var nVia, nRoute, nRR int
	var cl *sip.ContentLengthHeader
	n, pos, hdrEnd := 0, startEnd+2, 0
	for {
		j := strings.IndexByte(s[pos:], '\r')
		if j < 0 {
			return nil, nil
		}
		j += pos
		if j+1 >= len(s) || s[j+1] != '\n' {
			return nil, nil
		}
		if j == pos {
			hdrEnd = j + 2
			break
		}
		if j+2 < len(s) && (s[j+2] == ' ' || s[j+2] == '\t') {
			return nil, nil // folded line
		}
		colon := strings.IndexByte(s[pos:j], ':')
		if colon < 0 || n == maxLines {
			return nil, nil
		}
		colon += pos
		name := strings.TrimSpace(s[pos:colon])
		value := strings.TrimSpace(s[colon+1 : j])
		pos = j + 2
		var h sip.Header
		switch kind := headerKind(name); kind {
		case kindGeneric:
			h = a.generic(name, value)
		case kindVia:
			// A line may hold several Vias, comma-separated (RFC 3261
			// 7.3.1); sipp's [last_Via:] writes them so.
			for {
				v := a.newVia()
				rest, more, ok := a.parseVia(value, v)
				if !ok {
					return nil, nil
				}
				if nVia == 0 {
					firstVia = v
				}
				nVia++
				if !more {
					h = v
					break
				}
				if n+1 >= maxLines {
					return nil, nil
				}
				order[n] = v
				n++
				value = rest
			}
		case kindFrom:
			f := &a.from
			if a.used&usedFrom != 0 {
				f = new(sip.FromHeader)
			}
			a.used |= usedFrom
			var ok bool
			f.DisplayName, f.Params, ok = a.parseAddress(value, &f.Address, true)
			if !ok || f.Address.Wildcard {
				return nil, nil
			}
			h = f
		case kindTo:
			t := &a.to
			if a.used&usedTo != 0 {
				t = new(sip.ToHeader)
			}
			a.used |= usedTo
			var ok bool
			t.DisplayName, t.Params, ok = a.parseAddress(value, &t.Address, true)
			if !ok || t.Address.Wildcard {
				return nil, nil
			}
			h = t
		case kindContact:
			if strings.IndexByte(value, ',') >= 0 {
				return nil, nil
			}
			c := a.contact
			if c == nil || a.used&usedContact != 0 {
				c = new(sip.ContactHeader)
			}
			a.used |= usedContact
			var ok bool
			c.DisplayName, c.Params, ok = a.parseAddress(value, &c.Address, true)
			if !ok {
				return nil, nil
			}
			h = c
		case kindCallID:
			if len(value) == 0 {
				return nil, nil
			}
			c := &a.callID
			if a.used&usedCallID != 0 {
				c = new(sip.CallIDHeader)
			}
			a.used |= usedCallID
			*c = sip.CallIDHeader(value)
			h = c
		case kindCSeq:
			c := &a.cseq
			if a.used&usedCSeq != 0 {
				c = new(sip.CSeqHeader)
			}
			a.used |= usedCSeq
			if !parseCSeq(value, c) {
				return nil, nil
			}
			h = c
		case kindMaxFwd:
			v, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return nil, nil
			}
			m := &a.maxFwd
			if a.used&usedMaxFwd != 0 {
				m = new(sip.MaxForwardsHeader)
			}
			a.used |= usedMaxFwd
			*m = sip.MaxForwardsHeader(v)
			h = m
		case kindCL:
			v, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return nil, nil
			}
			c := a.newCL()
			*c = sip.ContentLengthHeader(v)
			cl = c
			h = c
		case kindCType:
			if len(value) == 0 {
				return nil, nil
			}
			c := &a.ctype
			if a.used&usedCType != 0 {
				c = new(sip.ContentTypeHeader)
			}
			a.used |= usedCType
			*c = sip.ContentTypeHeader(value)
			h = c
		case kindRoute, kindRecordRoute:
			// A line may list several routes, comma-separated (sipp's
			// [routes] writes them so).
			rr := kind == kindRecordRoute
			for {
				var uri *sip.Uri
				var r sip.Header
				if rr {
					x := new(sip.RecordRouteHeader)
					uri, r = &x.Address, x
				} else {
					x := new(sip.RouteHeader)
					uri, r = &x.Address, x
				}
				rest, more, ok := a.parseRoute(value, uri)
				if !ok {
					return nil, nil
				}
				switch {
				case rr && nRR == 0:
					firstRR = r
				case !rr && nRoute == 0:
					firstRoute = r
				}
				if rr {
					nRR++
				} else {
					nRoute++
				}
				if !more {
					h = r
					break
				}
				if n+1 >= maxLines {
					return nil, nil
				}
				order[n] = r
				n++
				value = rest
			}
		default:
			return nil, nil
		}
		order[n] = h
		n++
	}

	// The body: Content-Length bytes, or the rest of the datagram.
	rest := len(data) - hdrEnd
	bodySize := rest
	if cl != nil {
		bodySize = int(*cl)
	}
	var body []byte
	if bodySize > 0 {
		if bodySize > sip.ParseMaxMessageLength-hdrEnd || bodySize > rest {
			return nil, nil
		}
		body = buf[hdrEnd : hdrEnd+bodySize : hdrEnd+bodySize]
		if cl == nil {
			// sipgo's SetBody appends the Content-Length it lacks.
			c := a.newCL()
			*c = sip.ContentLengthHeader(bodySize)
			order[n] = c
			n++
		}
	}

	// One allocation for the header order. PrependHeader points each
	// quick reference at the last header of its kind; sipgo's AppendHeader
	// keeps the first Via, Route and Record-Route: ReplaceHeader puts them
	// back (each is the first header of its name, replaced by itself).
	if req != nil {
		req.PrependHeader(order[:n]...)
		if nVia > 1 {
			req.ReplaceHeader(firstVia)
		}
		if nRoute > 1 {
			req.ReplaceHeader(firstRoute)
		}
		if nRR > 1 {
			req.ReplaceHeader(firstRR)
		}
		if body != nil {
			req.SetBody(body) // the Content-Length matches: only the body is set
		}
	} else {
		resp.PrependHeader(order[:n]...)
		if nVia > 1 {
			resp.ReplaceHeader(firstVia)
		}
		if nRoute > 1 {
			resp.ReplaceHeader(firstRoute)
		}
		if nRR > 1 {
			resp.ReplaceHeader(firstRR)
		}
		if body != nil {
			resp.SetBody(body)
		}
	}
	return msg, arena
}

func (a *hdrArena) newVia() *sip.ViaHeader {
	if int(a.nvia) < len(a.via) {
		a.nvia++
		return &a.via[a.nvia-1]
	}
	return new(sip.ViaHeader)
}

func (a *hdrArena) newCL() *sip.ContentLengthHeader {
	if int(a.ncl) < len(a.cl) {
		a.ncl++
		return &a.cl[a.ncl-1]
	}
	return new(sip.ContentLengthHeader)
}

// kvChunk is how many parameter slots a message gets at once when the
// arena's run out.
const kvChunk = 8

// params returns an empty parameter list over free slots, as many as a
// list parsed from s with the separator sep usually holds (one more than
// the separators in s). A list that outgrows them (quoted values can add
// parameters without a separator) is moved by append, as sipgo's would be.
func (a *hdrArena) params(s string, sep byte) sip.HeaderParams {
	need := strings.Count(s, string(sep)) + 1
	if len(s) > 0 && s[0] == ';' {
		need-- // ";tag=x" after '>': the empty first segment adds nothing
	}
	if len(a.kv)-int(a.nkv) < need {
		a.kv, a.nkv = make([]sip.HeaderKV, max(need, kvChunk)), 0
	}
	return a.kv[a.nkv:a.nkv:len(a.kv)]
}

// keep closes a list params returned: capacity cut to its length, the slots
// it used taken. An empty list stays empty but not nil.
func (a *hdrArena) keep(p sip.HeaderParams) sip.HeaderParams {
	if cap(p) == len(a.kv)-int(a.nkv) {
		a.nkv += int32(len(p))
	}
	return p[:len(p):len(p)]
}

// keepOrNil is keep for a list sipgo leaves nil when nothing was added.
func (a *hdrArena) keepOrNil(p sip.HeaderParams) sip.HeaderParams {
	if len(p) == 0 {
		return nil
	}
	return a.keep(p)
}

// split3, isRequest and isResponse are sipgo's start-line split.
func split3(s string) (parts [3]string, ok bool) {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return
	}
	parts[0] = s[:i]
	s = s[i+1:]
	i = strings.IndexByte(s, ' ')
	if i < 0 {
		return
	}
	parts[1] = s[:i]
	parts[2] = s[i+1:]
	return parts, true
}

func isRequest(parts [3]string) bool {
	p := parts[2]
	if len(p) < 3 || strings.IndexByte(p, ' ') >= 0 {
		return false
	}
	return sip.UriIsSIP(p[:3])
}

func isResponse(parts [3]string) bool {
	p := parts[0]
	return len(p) >= 3 && sip.UriIsSIP(p[:3])
}

// parseCSeq is sipgo's parseCSeqHeader.
func parseCSeq(s string, c *sip.CSeqHeader) bool {
	ind := strings.IndexAny(s, " \t")
	if ind < 1 || len(s)-ind < 2 {
		return false
	}
	seq, err := strconv.ParseUint(s[:ind], 10, 32)
	if err != nil || seq > 2147483647 {
		return false
	}
	c.SeqNo = uint32(seq)
	c.MethodName = sip.RequestMethod(s[ind+1:])
	return true
}

// parseVia is sipgo's parseViaHeader for one Via of a value: more is set,
// with the rest of the value after the comma, when another Via follows.
func (a *hdrArena) parseVia(s string, h *sip.ViaHeader) (rest string, more, ok bool) {
	ind := strings.IndexByte(s, '/')
	if ind < 0 {
		return "", false, false
	}
	h.ProtocolName = strings.TrimSpace(s[:ind])
	s = s[ind+1:]
	if ind = strings.IndexByte(s, '/'); ind < 0 {
		return "", false, false
	}
	h.ProtocolVersion = strings.TrimSpace(s[:ind])
	s = s[ind+1:]
	if ind = strings.IndexAny(s, " \t"); ind < 0 {
		return "", false, false
	}
	h.Transport = strings.TrimSpace(s[:ind])
	s = s[ind+1:]

	if len(s) > 0 && s[0] == '[' {
		closeIdx := strings.IndexByte(s, ']')
		if closeIdx < 0 {
			return "", false, false
		}
		h.Host = strings.TrimSpace(s[1:closeIdx])
		rest := s[closeIdx+1:]
		if len(rest) == 0 {
			return "", false, true
		}
		switch rest[0] {
		case ':':
			endIdx := strings.IndexByte(rest, ';')
			portStr := rest[1:]
			if endIdx >= 0 {
				portStr = rest[1:endIdx]
			}
			port, err := strconv.Atoi(strings.TrimSpace(portStr))
			if err != nil {
				return "", false, true
			}
			h.Port = port
			if endIdx < 0 {
				return "", false, true
			}
			s = rest[endIdx+1:]
		case ';':
			s = rest[1:]
		default:
			return "", false, true
		}
	} else {
		colonInd, endIndex := 0, len(s)
	loop:
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case ';':
				endIndex = i
				break loop
			case ':':
				colonInd = i
			}
		}
		if colonInd > 0 {
			var err error
			h.Port, err = strconv.Atoi(s[colonInd+1 : endIndex])
			if err != nil {
				return "", false, true
			}
			h.Host = strings.TrimSpace(s[:colonInd])
		} else {
			h.Host = strings.TrimSpace(s[:endIndex])
		}
		if endIndex == len(s) {
			return "", false, true
		}
		s = s[endIndex+1:]
	}
	if s == "" {
		return "", false, true // sipgo's Params stay nil
	}
	// sipgo's viaStateParams: a comma in the parameters ends this Via and
	// the next one starts after it.
	if comma := strings.IndexByte(s, ','); comma > 0 {
		p := a.params(s[:comma], ';')
		sip.UnmarshalHeaderParams(s[:comma], ';', ',', &p)
		h.Params = a.keepOrNil(p)
		return s[comma+1:], true, true
	}
	p := a.params(s, ';')
	sip.UnmarshalHeaderParams(s, ';', '\r', &p)
	h.Params = a.keepOrNil(p)
	return "", false, true
}

// parseURI is sipgo's ParseUri for sip and sips URIs (others keep their
// scheme-specific part in a field only sipgo can set: false, sipgo's turn).
func (a *hdrArena) parseURI(s string, uri *sip.Uri) bool {
	if len(s) == 0 {
		return false
	}
	if len(s) < 3 {
		if s == "*" {
			uri.Host = "*"
			uri.Wildcard = true
			return true
		}
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == ':' {
			break
		}
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	if i == len(s) {
		return false
	}
	scheme := sip.ASCIIToLower(s[:i])
	if scheme != "sip" && scheme != "sips" {
		return false
	}
	uri.Scheme = scheme
	s, uri.HierarhicalSlashes = strings.CutPrefix(s[i+1:], "//")

	// user[:password]@
	userEnd := 0
user:
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			s = s[i:]
			break user
		case ':':
			userEnd = i
		case '@':
			if userEnd > 0 {
				uri.User = s[:userEnd]
				uri.Password = s[userEnd+1 : i]
			} else {
				uri.User = s[:i]
			}
			s = s[i+1:]
			break user
		}
	}

	// host
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			return a.uriIPv6(s[i:], uri)
		case ':':
			uri.Host = s[:i]
			return a.uriPort(s[i+1:], uri)
		case ';':
			uri.Host = s[:i]
			return a.uriParams(s[i+1:], uri)
		case '?':
			uri.Host = s[:i]
			return a.uriHeaders(s[i+1:], uri)
		}
	}
	uri.Host = s
	uri.Wildcard = s == "*"
	return true
}

func (a *hdrArena) uriIPv6(s string, uri *sip.Uri) bool {
	ind := strings.IndexByte(s[:min(len(s), 42)], ']')
	if ind <= 0 {
		return false
	}
	uri.Host = s[:ind+1]
	if ind+1 == len(s) {
		return true
	}
	s = s[ind+1:]
	switch s[0] {
	case ':':
		return a.uriPort(s[1:], uri)
	case ';':
		return a.uriParams(s[1:], uri)
	case '?':
		return a.uriHeaders(s[1:], uri)
	}
	return true
}

func (a *hdrArena) uriPort(s string, uri *sip.Uri) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';':
			var err error
			if uri.Port, err = strconv.Atoi(s[:i]); err != nil {
				return false
			}
			return a.uriParams(s[i+1:], uri)
		case '?':
			var err error
			if uri.Port, err = strconv.Atoi(s[:i]); err != nil {
				return false
			}
			return a.uriHeaders(s[i+1:], uri)
		}
	}
	var err error
	uri.Port, err = strconv.Atoi(s)
	return err == nil
}

func (a *hdrArena) uriParams(s string, uri *sip.Uri) bool {
	if len(s) == 0 {
		return true
	}
	p := a.params(s, ';')
	n, _ := sip.UnmarshalHeaderParams(s, ';', '?', &p)
	uri.UriParams = a.keep(p)
	if n == len(s) {
		n--
	}
	if s[n] != '?' {
		return true
	}
	return a.uriHeaders(s[n+1:], uri)
}

func (a *hdrArena) uriHeaders(s string, uri *sip.Uri) bool {
	p := a.params(s, '&')
	sip.UnmarshalHeaderParams(s, '&', 0, &p)
	uri.Headers = a.keepOrNil(p)
	return true
}

// parseAddress is sipgo's ParseAddressValue: the display name, the URI into
// uri, and the header parameters (kept when withParams).
func (a *hdrArena) parseAddress(s string, uri *sip.Uri, withParams bool) (display string, params sip.HeaderParams, ok bool) {
	if len(s) == 0 {
		return "", nil, false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return a.addrQuoted(s[i+1:], uri, withParams)
		case '<':
			params, ok = a.addrBracket(s[i+1:], uri, withParams)
			return strings.TrimSpace(s[:i]), params, ok
		case ';':
			params, ok = a.addrURI(s, uri, withParams)
			return "", params, ok
		}
	}
	params, ok = a.addrURI(s, uri, withParams)
	return "", params, ok
}

func (a *hdrArena) addrQuoted(s string, uri *sip.Uri, withParams bool) (display string, params sip.HeaderParams, ok bool) {
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			escaped = !escaped
			continue
		}
		if escaped {
			if c == '\n' || c == '\r' {
				return "", nil, false
			}
			escaped = false
			continue
		}
		if c == '"' {
			display = s[:i]
			s = s[i+1:]
			for j := 0; j < len(s); j++ {
				switch s[j] {
				case '<':
					params, ok = a.addrBracket(s[j+1:], uri, withParams)
					return display, params, ok
				case ';':
					params, ok = a.addrURI(s[j+1:], uri, withParams)
					return display, params, ok
				}
			}
			return "", nil, false
		}
	}
	return "", nil, false
}

func (a *hdrArena) addrBracket(s string, uri *sip.Uri, withParams bool) (sip.HeaderParams, bool) {
	i := strings.IndexByte(s, '>')
	if i < 0 || !a.parseURI(s[:i], uri) {
		return nil, false
	}
	return a.addrParams(s[i+1:], withParams), true
}

func (a *hdrArena) addrURI(s string, uri *sip.Uri, withParams bool) (sip.HeaderParams, bool) {
	if len(s) == 0 {
		return nil, false
	}
	i := strings.IndexByte(s, ';')
	if i < 0 {
		return nil, a.parseURI(s, uri)
	}
	if !a.parseURI(s[:i], uri) {
		return nil, false
	}
	return a.addrParams(s[i+1:], withParams), true
}

// addrParams is sipgo's addressStateHeaderParams: ';'-separated, the last
// '=' splitting name and value, no trimming.
func (a *hdrArena) addrParams(s string, withParams bool) sip.HeaderParams {
	if !withParams || s == "" {
		return nil
	}
	p := a.params(s, ';')
	for {
		equal, semi := -1, -1
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				equal = i
			} else if s[i] == ';' {
				semi = i
				break
			}
		}
		seg := s
		if semi >= 0 {
			seg = s[:semi]
		}
		switch {
		case equal > 0:
			p.Add(seg[:equal], seg[equal+1:])
		case len(seg) > 0:
			p.Add(seg, "")
		}
		if semi < 0 {
			break
		}
		s = s[semi+1:]
	}
	return a.keepOrNil(p)
}

// parseRoute is sipgo's parseRouteAddress for one route of a value: the
// address is parsed at a comma outside quotes and angle brackets (more is
// then set, with the rest of the value after it), or when the last
// character is outside them.
func (a *hdrArena) parseRoute(s string, uri *sip.Uri) (rest string, more, ok bool) {
	inBrackets, inQuotes := false, false
	end := len(s) - 1
	for idx, c := range s {
		if c == '<' && !inQuotes {
			inBrackets = true
			continue
		}
		if c == '>' && !inQuotes {
			inBrackets = false
		} else if c == '"' {
			inQuotes = !inQuotes
		}
		if inQuotes || inBrackets {
			continue
		}
		switch {
		case c == ',': // sipgo's errComaDetected: the next route follows
			_, _, ok := a.parseAddress(s[:idx], uri, false)
			return s[idx+1:], true, ok
		case idx == end:
			_, _, ok := a.parseAddress(s, uri, false)
			return "", false, ok
		}
	}
	return "", false, true
}

// genericHeader has the layout of sipgo's unexported generic header (the
// one sip.NewHeader returns); the arena holds a few, handed out as that
// type when init has checked the layout, through sip.NewHeader otherwise.
type genericHeader struct {
	HeaderName string
	Contents   string
}

var genericItab unsafe.Pointer

func init() {
	h := sip.NewHeader("n", "v")
	t := reflect.TypeOf(h)
	if t.Kind() != reflect.Pointer {
		return
	}
	t = t.Elem()
	str := reflect.TypeOf("")
	if t.Kind() != reflect.Struct || t.NumField() != 2 || t.Size() != unsafe.Sizeof(genericHeader{}) ||
		t.Field(0).Name != "HeaderName" || t.Field(0).Type != str || t.Field(0).Offset != unsafe.Offsetof(genericHeader{}.HeaderName) ||
		t.Field(1).Name != "Contents" || t.Field(1).Type != str || t.Field(1).Offset != unsafe.Offsetof(genericHeader{}.Contents) {
		return
	}
	genericItab = (*[2]unsafe.Pointer)(unsafe.Pointer(&h))[0]
	g := &genericHeader{HeaderName: "X-Check", Contents: "ok"}
	if c := asHeader(g); c.Name() != "X-Check" || c.Value() != "ok" {
		genericItab = nil
	}
}

func asHeader(g *genericHeader) sip.Header {
	var h sip.Header
	p := (*[2]unsafe.Pointer)(unsafe.Pointer(&h))
	p[0] = genericItab
	p[1] = unsafe.Pointer(g)
	return h
}

func (a *hdrArena) generic(name, value string) sip.Header {
	if genericItab == nil || int(a.ngen) == len(a.gen) {
		return sip.NewHeader(name, value)
	}
	g := &a.gen[a.ngen]
	a.ngen++
	g.HeaderName, g.Contents = name, value
	return asHeader(g)
}
