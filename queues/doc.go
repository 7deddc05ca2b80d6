// Package queues holds kemi's named FIFOs: Kamailio's mqueue module without its Lua or SIP
// side. A Registry holds the queues of one configuration, each defined by Options (parsed from
// the mqueue modparam by ParseSpec); a Store persists them, in memory (MemStore) or in SQLite
// (SQLStore, Kamailio's table layout).
//
// # Adding and fetching
//
// Queue.Add follows Kamailio's mq_item_add: the add-mode rule, then append at the tail, then,
// when Size > 0 and the queue holds more than Size items, exactly one item is dropped from the
// head, silently. Add modes: 0 append; 1 keep oldest (a key already queued makes the add a
// successful no-op); 2 keep newest (the first item with that key is removed and the new one
// appended). Queue.Fetch removes the oldest item, or returns ErrEmpty. Keys and values are
// stored as given, without copying.
//
// # Concurrency
//
// Every Queue method is safe for concurrent use; each queue has one mutex, held for the length
// of one call (including the store write of a durable queue). The Registry's name map is built
// by NewRegistry and never changes, so Registry.Get and Registry.Queues take no lock and may be
// called from any goroutine. Registry.Load must return before traffic starts, and
// Registry.Save runs after it has stopped; both are data-race free in any case. MemStore and
// SQLStore are safe for concurrent use.
//
// # DB modes
//
// Options.DBMode says what Registry.Load (at start) and Registry.Save (at stop) do with the
// queue's table. Modes 1 to 3 follow Kamailio's source, in which 2 is "load only" and 3 "save
// only"; the mqueue admin guide has 2 and 3 swapped, and the source is the reference.
//
//   - 0, none: no table.
//   - 1, load and save: at start, the rows are added in id order through the normal add path
//     (size eviction and the add mode apply) and kept in the table; at stop, Save replaces the
//     table's rows with the queue's current content, oldest first, in one transaction.
//     Kamailio deletes the rows right after loading, so a crash before the next stop loses
//     them; kemi keeps them, so after a crash the table still holds what was loaded
//     (at-least-once), never less.
//   - 2, load only: at start, the rows are added as in mode 1, then exactly the loaded rows
//     are deleted (rows written meanwhile by someone else stay). Nothing ever saves them back,
//     so keeping them would deliver them again at every start. Save does nothing.
//   - 3, save only: nothing is loaded; at stop, Save appends the queue's content to the table,
//     oldest first, without clearing it, and empties the queue (as Kamailio drains it), so a
//     second Save writes nothing twice. As in Kamailio, the table is an export for other
//     consumers and rows accumulate across restarts by design.
//   - 4, durable (a kemi extension): at start, the rows are added as in mode 1, each item
//     keeping its row id, and the rows of items the add rules dropped are deleted. From then
//     on every Add first inserts a row and appends only once the insert succeeded (otherwise
//     it returns the error and adds nothing), and every item leaving the queue (Fetch, size
//     eviction, keep-newest replacement) deletes its row. Save does nothing. So after the
//     process is killed, every Add that returned nil and whose item had not left the queue is
//     in the table. If Fetch cannot delete the row it returns the error and the item stays
//     queued; if the row of an item dropped by Add cannot be deleted, the row stays and the
//     item comes back at the next start (at-least-once). SQLStore runs SQLite in WAL mode
//     with synchronous=NORMAL: a committed row survives a crash of the process or a SIGKILL,
//     but not a power loss or an operating system crash, which may lose the last commits.
//
// # JetStream
//
// Registry.Connect, instead of Load, puts every durable queue (DBModeDurable) in a NATS
// JetStream stream (jetstream.go, the only file that knows NATS): work-queue retention,
// MaxMsgs = Size and DiscardOld, so the oldest item is evicted cluster-wide, and one durable
// pull consumer shared by every node. Add returns nil only once JetStream acknowledged the
// publish; Fetch takes one message and returns it only once its acknowledgement is confirmed
// (at-most-once: no other node can take it); Len and Size ask the stream (cluster-wide, taken
// items not yet acknowledged included). Other queues stay in memory. Only AddModeAppend is
// supported there.
//
// JetStream.Lease (lease.go) is a lease held by one node of a cluster at a time, in a
// key-value bucket, for timers that must run on one node only (rtimer's cluster=one).
//
// # Take and acknowledge
//
// Queue.Take hands out the oldest item as a Taken, which Ack removes for good and Nack puts
// back (take.go). Until then the item is out of the queue but not gone: a durable queue keeps
// its row (so it is queued again after a restart) and JetStream delivers it again to any node
// once AckWait has passed. In memory, a taken item is lost with the process.
//
// Load stops at the first failing queue; Save tries every queue and joins the errors. Modes
// 1 to 4 need a Store at Load, modes 1 and 3 at Save (ErrNoStore otherwise). Load first proves
// with Store.CheckWrite (a write that is rolled back) that the table of a mode 1, 3 or 4 queue
// can be written: a store that would fail the save at the stop, or every durable add, fails the
// start instead. Mode 2 writes only at Load, when it deletes the rows it loaded, and a failure
// there fails the start too. A durable queue refuses Add with ErrNoStore until Load has armed
// it.
//
// # Tables
//
// One table per queue, named after the queue (the name is quoted, so any name works), with
// the columns id INTEGER PRIMARY KEY AUTOINCREMENT, key and val (TEXT NOT NULL, default empty),
// created if missing. Rows are read in id order. A table created by hand without an id column,
// as the Kamailio admin guide shows, is ordered and its rows deleted by SQLite's rowid. A NULL
// key or val fails the load, as it aborts Kamailio's start. SQLite ignores ASCII case in
// table names, so two persisted queues whose names differ only in case are an error.
package queues
