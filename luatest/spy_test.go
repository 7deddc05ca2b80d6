package luatest_test

import (
	"strings"
	"testing"

	"kemi/luatest"
)

// A failing spy assertion reports the file:line of the assert, what was
// expected and every call the spy saw; spies do not outlive their test.
func TestSpyFailureReport(t *testing.T) {
	dir := suiteDir(t, map[string]string{"spy_test.lua": `local t = require("kemi.test")
t.test("wrong reply", function()
	local s = spy.on(KSR.sl, "send_reply")
	t.request{}
	t.request{}
	assert.spy(s).was.called_with(404, "Not Found")
end)
t.test("stubbed function that does not exist", function()
	stub(KSR.sl, "send_replyy")
end)
t.test("not called twice", function()
	local s = spy.on(KSR, "info")
	t.request{}
	assert.spy(s).was.called(2)
end)
t.test("the stub of an earlier test is gone", function()
	t.equal(t.request{}.code, 200)
end)
`})
	sum, out := runIn(t, dir, []string{"spy_test.lua"}, luatest.Options{})
	if sum.Failed != 3 || sum.Passed != 1 {
		t.Fatalf("%s\n%s", sum, out)
	}
	for _, want := range []string{
		"FAIL spy_test.lua: wrong reply\n" +
			"    spy_test.lua:6: expected KSR.sl.send_reply to be called with (404, \"Not Found\")\n" +
			"        expected: called with (404, \"Not Found\")\n" +
			"        actual:   2 times: (200, \"OK\"), (200, \"OK\")\n",
		"FAIL spy_test.lua: stubbed function that does not exist\n" +
			"    spy_test.lua:9: stub(KSR.sl.send_replyy): no such KSR function in kemi (did you mean KSR.sl.send_reply?)\n",
		"FAIL spy_test.lua: not called twice\n" +
			"    spy_test.lua:14: expected KSR.info to be called 2 times\n" +
			"        expected: called 2 times\n" +
			"        actual:   1 time: (\"routing OPTIONS\")\n",
		"ok   spy_test.lua: the stub of an earlier test is gone\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks:\n%s\nreport:\n%s", want, out)
		}
	}
}
