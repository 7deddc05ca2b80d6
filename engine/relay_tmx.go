package engine

import (
	"kemi/sipnet"
)

// What tmx's $T_branch_idx reads from a relay cell, through
// sipnet.Branch.Owner (modules/tm/tmx_more.go).

// branchCount is how many branches the cell created.
func (c *cell) branchCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// BranchIndex is b's index among the cell's branches, -1 if it is not one
// of them ($T_branch_idx in reply routes).
func (c *cell) BranchIndex(b *sipnet.Branch) int {
	if b == nil || b.Owner() != sipnet.RelayCell(c) {
		return -1
	}
	return b.Index()
}
