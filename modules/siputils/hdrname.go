package siputils

import "strings"

// hdrType gives the header names Kamailio's parse_hname2 knows, long and
// compact forms, lower case, one id per header type; 0 for other names.
func hdrType(lower string) int {
	switch lower {
	case "via", "v":
		return 1
	case "to", "t":
		return 2
	case "from", "f":
		return 3
	case "cseq":
		return 4
	case "call-id", "i":
		return 5
	case "contact", "m":
		return 6
	case "max-forwards":
		return 7
	case "route":
		return 8
	case "record-route":
		return 9
	case "content-type", "c":
		return 10
	case "content-length", "l":
		return 11
	case "authorization":
		return 12
	case "expires":
		return 13
	case "proxy-authorization":
		return 14
	case "supported", "k":
		return 15
	case "require":
		return 16
	case "proxy-require":
		return 17
	case "unsupported":
		return 18
	case "allow":
		return 19
	case "event", "o":
		return 20
	case "accept":
		return 21
	case "accept-language":
		return 22
	case "organization":
		return 23
	case "priority":
		return 24
	case "subject", "s":
		return 25
	case "user-agent":
		return 26
	case "server":
		return 27
	case "content-disposition":
		return 28
	case "diversion":
		return 29
	case "remote-party-id":
		return 30
	case "refer-to", "r":
		return 31
	case "session-expires", "x":
		return 32
	case "min-se":
		return 33
	case "sip-if-match":
		return 34
	case "subscription-state":
		return 35
	case "date":
		return 36
	case "identity":
		return 37
	case "identity-info":
		return 38
	case "p-preferred-identity":
		return 39
	case "p-asserted-identity":
		return 40
	case "path":
		return 41
	case "privacy":
		return 42
	case "reason":
		return 43
	case "referred-by", "b":
		return 44
	case "allow-events", "u":
		return 45
	case "content-encoding", "e":
		return 46
	case "accept-contact", "a":
		return 47
	case "reject-contact", "j":
		return 48
	case "request-disposition", "d":
		return 49
	case "www-authenticate":
		return 50
	case "proxy-authenticate":
		return 51
	case "min-expires":
		return 52
	case "retry-after":
		return 53
	}
	return 0
}

// cmpHdrName is cmp_hdrname_str: names of the same known header type
// match in any form (From and f), other names match ignoring case; 0
// match, 2 or other >0 no match, -4 an empty name.
func cmpHdrName(a, b string) int {
	a = strings.TrimRight(a, " \t\r\n")
	b = strings.TrimRight(b, " \t\r\n")
	if a == "" || b == "" {
		return -4
	}
	ta, tb := hdrType(strings.ToLower(a)), hdrType(strings.ToLower(b))
	switch {
	case ta != 0 && ta == tb:
		return 0
	case ta != 0 || tb != 0:
		return 2
	}
	return cmpStr(a, b, true)
}
