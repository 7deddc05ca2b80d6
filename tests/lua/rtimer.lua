-- rtimer.lua: the timer callbacks rtimer_test.lua exercises. Each records
-- "<callback argument>@<$rtimer_worker>" under its name, with the tick's
-- time ($TV(Sn): seconds.microseconds of the virtual clock) as the value
-- of the pairs queue.

function ksr_request_route()
	KSR.sl.send_reply(200, "OK")
end

-- runs counts the runs of this VM's tick_first: a global, per timer VM.
runs = 0

function tick_first(evname)
	runs = runs + 1
	KSR.mqueue.mq_add("ticks", "first", evname .. "@" .. KSR.pv.get("$rtimer_worker") .. " run " .. runs)
end

function tick_second(evname)
	KSR.mqueue.mq_add("ticks", "second", evname .. "@" .. KSR.pv.get("$rtimer_worker") .. " at " .. KSR.pv.get("$Ts"))
end

function tick_pair(evname)
	KSR.mqueue.mq_add("pairs", evname .. "@" .. KSR.pv.get("$rtimer_worker"), KSR.pv.get("$TV(Sn)"))
end
