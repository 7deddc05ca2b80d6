package ksr

import "kemi/stats"

// slCodes are the reply codes sl counts on their own (sl_stats.c); the
// others of a class go to "<class>xx_replies".
var slCodes = [...]int{200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500}

// replyStats are sl's reply counters, resolved once so that
// counting a reply takes no lock and builds no name.
type replyStats struct {
	sent  *stats.Stat
	code  map[int]*stats.Stat // the codes in slCodes (read-only)
	class [7]*stats.Stat      // 1xx..6xx by code/100; [0] is "xxx"
}

// ResolveReplyStats looks up the reply counters in Deps.Stats. Call it once,
// after Stats is set and before any VM runs.
func (d *Deps) ResolveReplyStats() {
	if d.Stats == nil {
		return
	}
	r := d.Stats
	rs := &replyStats{sent: r.Counter("sl", "sent_replies"), code: map[int]*stats.Stat{}}
	for _, c := range slCodes {
		rs.code[c] = r.Counter("sl", itoa3(c)+"_replies")
	}
	rs.class[0] = r.Counter("sl", "xxx_replies")
	for i := 1; i <= 6; i++ {
		rs.class[i] = r.Counter("sl", string(rune('0'+i))+"xx_replies")
	}
	d.replies = rs
}

// itoa3 writes a three-digit reply code.
func itoa3(c int) string {
	return string([]byte{byte('0' + c/100), byte('0' + c/10%10), byte('0' + c%10)})
}

// countReply counts a reply the script sent: stateless ones in sl's
// statistics (sl:sent_replies, sl:200_replies ... as Kamailio's sl);
// stateful ones are tm's, counted by the transaction (tmx:rpl_generated).
// Without statistics it does nothing.
func (d *Deps) countReply(code int, stateful bool) {
	rs := d.replies
	if rs == nil || stateful {
		return
	}
	rs.sent.Inc()
	if c := rs.code[code]; c != nil {
		c.Inc()
		return
	}
	if code >= 100 && code < 700 {
		rs.class[code/100].Inc()
		return
	}
	rs.class[0].Inc()
}
