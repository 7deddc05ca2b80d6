package sipnet

import "sync/atomic"

// tmStats are tm's transaction counters (Kamailio's struct t_proc_stats),
// kept where kemi's server transactions live: tmx's statistics
// (UAS_transactions, 2xx_transactions, inuse_transactions, rpl_sent …)
// are read from them.
type tmStats struct {
	created, waiting, deleted          atomic.Uint64
	completed                          [7]atomic.Uint64 // by code/100; final replies sent
	rplReceived, rplGenerated, rplSent atomic.Uint64
}

// TMStats are tm's transaction counters, as Kamailio's tm counts them.
type TMStats struct {
	// Transactions is how many server transactions were created; Waiting
	// how many of them reached the wait state (a final reply sent, or
	// ended without one); Deleted how many ended.
	Transactions, Waiting, Deleted uint64
	// Completed counts the final replies sent through transactions by
	// class (index code/100: 2..6), every relayed 2xx included.
	Completed [7]uint64
	// RplReceived counts the replies matched to a relayed request's branch,
	// RplGenerated the replies the transactions sent of their own (t_reply,
	// 100 Trying, 408 on timeout, 487), RplSent every reply sent through a
	// transaction (generated or relayed).
	RplReceived, RplGenerated, RplSent uint64
}

// TMStats returns tm's transaction counters.
func (s *Server) TMStats() TMStats {
	st := TMStats{
		Transactions: s.tm.created.Load(), Waiting: s.tm.waiting.Load(), Deleted: s.tm.deleted.Load(),
		RplReceived: s.tm.rplReceived.Load(), RplGenerated: s.tm.rplGenerated.Load(), RplSent: s.tm.rplSent.Load(),
	}
	for i := range st.Completed {
		st.Completed[i] = s.tm.completed[i].Load()
	}
	return st
}

// countSent counts a reply sent through the transaction (Kamailio's
// update_reply_stats, t_stats_rpl_sent and, for a local one,
// t_stats_rpl_generated).
func (t *Tx) countSent(code int, generated bool) {
	if t.srv == nil {
		return
	}
	tm := &t.srv.tm
	tm.rplSent.Add(1)
	if generated {
		tm.rplGenerated.Add(1)
	}
	if code >= 200 && code < 700 {
		tm.completed[code/100].Add(1)
	}
}

// toWait counts the transaction in the wait state once (put_on_wait).
func (t *Tx) toWait() {
	if t.srv != nil && t.waited.CompareAndSwap(false, true) {
		t.srv.tm.waiting.Add(1)
	}
}

// ended counts the transaction's end once (tm's t_stats_deleted).
func (t *Tx) ended() {
	if t.srv != nil && t.gone.CompareAndSwap(false, true) {
		t.toWait()
		t.srv.tm.deleted.Add(1)
	}
}

// countCancel counts what Kamailio's tm does for a CANCEL relayed to its
// INVITE's transaction (t_relay on the CANCEL): a transaction for the
// CANCEL, answered 200 at once. kemi answers a matched CANCEL in sipnet
// without a transaction of its own.
func (s *Server) countCancel() {
	s.tm.created.Add(1)
	s.tm.waiting.Add(1)
	s.tm.deleted.Add(1)
	s.tm.completed[2].Add(1)
	s.tm.rplGenerated.Add(1)
	s.tm.rplSent.Add(1)
}
