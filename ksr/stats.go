package ksr

import "strconv"

// slCodes are the reply codes sl counts on their own (sl_stats.c); the
// others of a class go to "<class>xx_replies".
var slCodes = map[int]bool{200: true, 202: true, 300: true, 301: true, 302: true,
	400: true, 401: true, 403: true, 404: true, 407: true, 408: true, 483: true, 500: true}

// countReply counts a reply the script sent: stateless ones in sl's
// statistics (sl:sent_replies, sl:200_replies ... as Kamailio's sl),
// stateful ones in tmx's (tmx:local_replies). Without a registry
// (Deps.Stats nil) it does nothing.
func (d *Deps) countReply(code int, stateful bool) {
	if d.Stats == nil {
		return
	}
	if stateful {
		d.Stats.Counter("tmx", "local_replies").Inc()
		return
	}
	d.Stats.Counter("sl", "sent_replies").Inc()
	name := "xxx"
	switch {
	case slCodes[code]:
		name = strconv.Itoa(code)
	case code >= 100 && code < 700:
		name = strconv.Itoa(code/100) + "xx"
	}
	d.Stats.Counter("sl", name+"_replies").Inc()
}
