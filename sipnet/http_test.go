package sipnet

import "testing"

func TestSniffHTTP(t *testing.T) {
	for _, tc := range []struct {
		head            string
		isHTTP, decided bool
	}{
		{"GET /ws HTTP/1.1\r\n", true, true},
		{"GE", false, false},
		{"OPTIONS ", false, false},
		{"OPTIONS sip:a@b SIP/2.0\r\n", false, true},
		{"OPTIONS * HTTP/1.1\r\n", true, true},
		{"INVITE sip:a@b SIP/2.0\r\n", false, true},
		{"\r\n\r\n", false, true},
		{"P", false, false},
		{"POST /x HTTP/1.1", true, true},
		{"PRACK sip:", false, true},
	} {
		h, d := sniffHTTP(tc.head)
		if h != tc.isHTTP || d != tc.decided {
			t.Errorf("%q: http %v decided %v, want %v %v", tc.head, h, d, tc.isHTTP, tc.decided)
		}
	}
}
