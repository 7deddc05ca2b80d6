package ksr

import "strings"

// Kamailio's request method bits (enum request_method in msg_parser.h):
// the value of usrloc's methods column and of registrar's method
// filtering.
const (
	MethodInvite    uint32 = 1 << iota // INVITE
	MethodCancel                       // CANCEL
	MethodAck                          // ACK
	MethodBye                          // BYE
	MethodInfo                         // INFO
	MethodRegister                     // REGISTER
	MethodSubscribe                    // SUBSCRIBE
	MethodNotify                       // NOTIFY
	MethodMessage                      // MESSAGE
	MethodOptions                      // OPTIONS
	MethodPrack                        // PRACK
	MethodUpdate                       // UPDATE
	MethodRefer                        // REFER
	MethodPublish                      // PUBLISH
	MethodKDMQ                         // KDMQ
	MethodGet                          // GET
	MethodPost                         // POST
	MethodPut                          // PUT
	MethodDelete                       // DELETE
	MethodOther                        // any other method
)

var methodBits = map[string]uint32{
	"INVITE": MethodInvite, "CANCEL": MethodCancel, "ACK": MethodAck, "BYE": MethodBye, "INFO": MethodInfo,
	"REGISTER": MethodRegister, "SUBSCRIBE": MethodSubscribe, "NOTIFY": MethodNotify, "MESSAGE": MethodMessage,
	"OPTIONS": MethodOptions, "PRACK": MethodPrack, "UPDATE": MethodUpdate, "REFER": MethodRefer,
	"PUBLISH": MethodPublish, "KDMQ": MethodKDMQ, "GET": MethodGet, "POST": MethodPost, "PUT": MethodPut,
	"DELETE": MethodDelete,
}

// MethodBit is the bit of method (case-insensitive), MethodOther for a
// method Kamailio does not know.
func MethodBit(method string) uint32 {
	if b, ok := methodBits[method]; ok {
		return b
	}
	if b, ok := methodBits[strings.ToUpper(method)]; ok {
		return b
	}
	return MethodOther
}

// MethodSet is the union of the bits of a comma-separated method list
// (an Allow header's value, a Contact's methods parameter); ok is false
// for an empty item.
func MethodSet(list string) (bits uint32, ok bool) {
	for _, m := range strings.Split(list, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			return 0, false
		}
		bits |= MethodBit(m)
	}
	return bits, true
}
