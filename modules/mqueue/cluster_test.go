package mqueue_test

import (
	"strings"
	"testing"
)

// TestTakeAckNack: the kemi extensions on an in-memory queue: codes, the
// taken item readable with mqk_get/mqv_get, a nack putting it back at the
// head, a second take putting back an unsettled item.
func TestTakeAckNack(t *testing.T) {
	d, log := mqDeps(t, testQueues...)
	vm := newMQVM(t, d, "w", "")
	mq := "KSR.mqueue."
	cases := []struct {
		chunk string
		want  []any
	}{
		{`return ` + mq + `mq_take("nope", 0), ` + mq + `mq_ack("nope"), ` + mq + `mq_nack("nope")`, vals(-1, -1, -1)},
		{`return ` + mq + `mq_take("q", 0), ` + mq + `mq_ack("q"), ` + mq + `mq_nack("q")`, vals(-2, -2, -2)},
		{mq + `mq_add("q", "a", "1"); ` + mq + `mq_add("q", "b", "2")
			return ` + mq + `mq_take("q", 10), ` + mq + `mqk_get("q"), ` + mq + `mqv_get("q"), ` + mq + `mq_size("q"), ` + mq + `mq_nack("q"), ` + mq + `mq_size("q")`,
			vals(1, "a", "1", 1, 1, 2)},
		{`return ` + mq + `mq_take("q", 0), ` + mq + `mq_take("q", 0), ` + mq + `mqk_get("q"), ` + mq + `mq_size("q")`, vals(1, 1, "a", 1)},
		{`return ` + mq + `mq_ack("q"), ` + mq + `mq_ack("q"), ` + mq + `mq_size("q"), ` + mq + `mq_fetch("q"), ` + mq + `mqk_get("q")`, vals(1, -2, 1, 1, "b")},
	}
	for _, c := range cases {
		if got := vm.run(c.chunk); !sameVals(got, c.want) {
			t.Fatalf("%s\n= %v, want %v\nlog:\n%s", c.chunk, got, c.want, log)
		}
	}
	if !strings.Contains(log.String(), "neither acked nor nacked") {
		t.Errorf("the implicit nack was not logged:\n%s", log)
	}
}
