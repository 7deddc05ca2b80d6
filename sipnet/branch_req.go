package sipnet

import "github.com/emiago/sipgo/sip"

// Request returns the request as the branch sent it (its Via on top). It
// is not modified once the branch started: callers may read it from any
// goroutine, and must not change it (tmx's $T_req clones it).
func (b *Branch) Request() *sip.Request { return b.req }
