// Package queue owns the durable spool: group-committed append-only
// segments, per-recipient delivery state, recovery after a crash.
//
// # Guarantee
//
// Enqueue returns nil only when the message can no longer be lost: its
// record is written and fdatasynced, and every directory entry leading to
// it (the segment file, a large message's own file) is fsynced. The same
// holds for every state change (MarkDeferred, MarkFailed, EnqueueDSN,
// Hold, Release, Retry, Delete): when the call returns nil the change
// survives kill -9 and power loss; when it returns an error it did not
// take effect in memory and may be retried. MarkDelivered of a message
// kept in a segment is the one exception: it returns once its record is
// written, which survives kill -9 (the page cache outlives the process),
// and the next batch that needs an fsync, or an idle committer within a
// second, makes it durable; a power loss before that can only make the
// message go out again — a duplicate, never a loss. Delivered marks are
// half of all records: on a busy gateway this saves about a third of the
// fdatasyncs.
//
// Creating, fsyncing and removing one file per message costs about a
// millisecond on ext4; appending to an open file and fdatasyncing costs a
// few hundred microseconds no matter how much was appended. So messages are
// appended to a shared segment file, and concurrent callers share one
// fdatasync: the committer goroutine takes every record that arrived while
// the previous fdatasync ran, writes them with one write(2), syncs once and
// then answers all their callers (group commit). Files are created only
// when a segment fills up (SegmentSize, 64 MiB by default) and removed in
// batches, a whole segment at a time. An fdatasync that must also record a
// longer file costs twice one that does not, so the committer writes zeros
// a megabyte ahead of the records and the records overwrite them: most
// batches leave the file's length unchanged. A finished segment is kept as
// the spare (at most one, and only when nothing reads it any more) and
// becomes the next segment: its blocks are written already, so while mail
// flows only the first segments after a start are zeroed (spare.go).
//
// # On-disk format
//
// The spool directory holds:
//
//	lock                     flock(2) of the process that owns the spool, and its pid
//	0000000000000001.seg     segments, named by a 16-hex-digit sequence number
//	spare                    a finished segment kept to become the next one
//	large/<ID>.msg           the data of messages over InlineMax, one file each
//	ctl/<name>.cmd|.work|.reply  commands from `sekisho queue` to a running gateway
//	ctl/<name>.enq|.enqwork      messages to queue (`sekisho quarantine release`)
//
// A segment starts with a 32-byte header, then records back to back, then
// possibly zeros up to the next megabyte (integers little-endian):
//
//	header:  "SKSQ" | u16 version=1 | u16 flags | u64 sequence | u64 ID floor | u32 CRC-32C of the previous 24 bytes | u32 0
//	record:  u32 n | u32 CRC-32C(u64 sequence, u32 n, body) | body (n bytes)
//	body:    u8 type | u64 message ID | fields of the type
//
// Flags: 1, recycled: the file was an earlier segment, whose records may
// follow this one's; they fail this segment's checksums and are free
// space, like the zeros. Other flags are ignored.
//
// The ID floor is the highest ID issued when the segment was created, so
// IDs keep growing after older segments are gone. The record checksum
// covers the segment number, so a block of another (removed) segment that
// surfaces after a crash does not pass as a record here.
//
// Record types and fields (uv = unsigned varint, v = signed varint,
// str = uv length + bytes, time = v Unix nanoseconds with 0 for none):
//
//	'M' message   u8 flags (1 held, 2 data in large/) | envelope | state × recipients
//	              | u64 reported-on ID (a DSN's original, or 0) | uv n | (uv rcpt, state) × n
//	              | data to the end of the body, or uv data length when in large/
//	'S' state     uv rcpt | state
//	'A' snapshot  u8 held | uv n | state × n
//	'H' hold      u8 held
//	'T' retry     time: every deferred recipient is due then
//	'D' delete    (no fields): the message is gone
//
//	envelope:  str from | time received | str source, client IP, HELO, AUTH user, ENVID, RET, BODY
//	           | u8 SMTPUTF8 | uv n | (str addr, original addr, NOTIFY, ORCPT) × n
//	state:     u8 status (0 pending, 1 deferred, 2 delivered, 3 failed) | u8 flags (1 delay DSN sent)
//	           | uv attempts | uv refusals | time next attempt | time updated | str last error
//
// State records carry the recipient's whole new state, not a difference,
// so replaying one twice changes nothing.
//
// # Recovery
//
// Open replays the segments in sequence order through the same function
// that applies live commits, so memory after recovery holds everything that
// was acknowledged, plus possibly whole records written but not yet
// acknowledged at the crash. Within a segment, a record whose frame is
// invalid (truncated, impossible length, checksum mismatch) is skipped:
// exactly that record when its length field is intact and a valid frame
// follows, else up to the next offset where a valid frame starts. Message
// data could contain bytes that look like a frame; one is taken only with
// a plausible length, a known record type, a message ID from a sensible
// time and a CRC-32C over this segment's number, so it cannot appear by
// chance, and only matters when damage lies right before it. What follows
// the last valid record (a torn tail) is discarded and reported, in the
// same words at every start; zeros to the end of the file are the space
// written ahead and are not reported. A damaged header does not hide the records,
// which are checked against the segment number in the file name; a file
// with no valid record is renamed *.corrupt and reported. A segment of
// another format version stops Open with an error instead, so a downgrade
// cannot strand messages.
//
// Why nothing acknowledged is lost: a caller is answered only after the
// fdatasync that covered its record returned, and batches are written one
// after another, each synced before the next is written. So every byte
// before an acknowledged record's end was synced, and a torn or invalid
// frame can only lie after the last acknowledged record. A segment is
// sealed (synced) before the next one is created, so only the newest
// segment can have a torn tail — or one abandoned after a write error,
// whose tail likewise holds nothing acknowledged. A large message's file is
// fsynced by its writer, and its directory is fsynced by the committer
// before the batch with its record is written, so a durable record never
// points to a missing file.
//
// A message is finished when every recipient is delivered or failed, or it
// is deleted. A segment is removed when it and every older segment hold no
// record in force of an unfinished message; segments are removed oldest
// first, with a directory fsync after each. The segments on disk are thus
// always a suffix of the log as written, so a record that finished a
// message never disappears while the message's own record survives: nothing
// finished comes back. Large files of finished messages are removed after
// the finishing record is durable; any left by a crash, or written for a
// message that was never committed, are removed by the next Open.
//
// A few unfinished messages waiting for a retry would pin their segment,
// and every newer one, for hours. Once a sealed segment has been pinned for
// CompactAfter and is at least half dead, its live messages are copied
// forward: a new 'M' record with the current state, written through the
// committer like any other. The copy is only made of a message with no
// change in flight, so it reflects exactly the records before it in the
// log, and records after it apply on top. When the copy is durable the old
// segment is free. Only the oldest segment is compacted, and only when at
// least half of it is dead: a long backlog of live messages (a next hop down
// for hours) keeps the newer, already finished segments until it drains.
//
// # Fault model
//
// Every disk operation can fail. What each failure does, and what the SMTP
// client and the next hop see:
//
//	operation                      ENOSPC / EIO / EROFS                         slow fsync
//	-----------------------------  -------------------------------------------  ---------------------------
//	statfs before a new message    no figure: the reserve is not enforced        -
//	                               (the write itself reports a full disk)
//	write of a large message file  Enqueue fails, file removed; client: 452      client waits (DATA reply)
//	fsync of large/ (dir)          the batch fails: 452 to its clients           every batch waits
//	create a segment, header,      the batch fails with *StorageError; the       -
//	  fsync of the spool dir       next batch tries again
//	zeros ahead of the records     ignored, no more zeros in this segment: the   -
//	                               batch's own write tells the disk's state
//	append a batch (write)         the batch fails; the segment is abandoned     -
//	                               (see below); clients 452; results stay
//	                               in the runner's memory
//	fdatasync of a batch           as a failed write: nothing since the last     clients and results wait;
//	                               good fsync is trusted                         new ones join the next batch
//	fdatasync of lazy marks        the segment is abandoned; the marks in        -
//	  (idle committer, or roll)    doubt can only cause a second delivery
//	remove a finished segment      retried at the next maintenance pass          -
//	  or large file                (a crash leaves it for the next Open)
//	read a message (delivery)      the attempt fails 451 4.3.0 locally: the      -
//	                               recipient is deferred, never bounced
//
// New mail is refused with ErrFull (452 4.3.1) while the spool is over
// MaxBytes or MaxMessages, and while the free space on its file system is
// below Config.Reserve: state records (results, bounces, repairs) may use
// the reserve, new mail may not. A full disk thus stops new mail before it
// stops results, and the delivery runner can always record what it did.
//
// When a write or fsync fails anyway, the callers in that batch get a
// *StorageError, and the segment is abandoned: after a failed fsync Linux
// may have dropped the dirty pages and cleared the error, so nothing in it
// since the last good fsync is trusted, and the next batch starts a new
// segment. Whatever part of the failed batch did reach the disk must not
// come back on replay, so the committer queues repair records first in the
// new segment: a snapshot of the current state of every message the batch
// touched, and a delete for every new message of the batch. Nothing
// acknowledged earlier is touched. A delete that failed may still take
// effect after a crash: a delete cannot be undone.
//
// Health reports a failing disk (from the first failed write or fsync to
// the next good one) and free space below the reserve; /healthz shows
// both. Storage errors are logged at a bounded rate: the first at once,
// then one line a minute with a count, and one when the disk works again.
//
// The delivery runner (relay/runner/faults.go) builds on this: a result
// that cannot be recorded is kept in its memory and the message is handed
// back with UnclaimAfter, so it is not claimed again before a back-off;
// when it is, the kept result is recorded first and no recipient the next
// hop accepted is sent the message again. While the disk fails, the runner
// pauses all deliveries and probes once per back-off (one log line a
// minute, the sekisho_delivery_paused gauge, /healthz degraded); it
// resumes by itself. Only a crash before a kept result is recorded sends
// a message again: a duplicate, never a loss.
//
// Damage found at Open (bit rot, a torn write in the middle of a segment,
// a damaged header) costs only the damaged records: see Recovery. A file
// with no readable record at all is set aside as *.corrupt; `sekisho queue
// salvage FILE` shows what is readable in it and re-imports it.
//
// # Ordering for bounces
//
// A bounce and the failure it reports must be committed together. Marking
// a recipient failed and then queuing its DSN could lose the DSN in a crash
// between the two; queuing the DSN first could bounce twice. EnqueueDSN
// writes both in one record: the DSN message, and the recipients' new
// states applied to the original. The same call records a delay
// notification (Mark with status Deferred sets DelayNotified). MarkFailed
// is for failures that send no DSN (null sender, NOTIFY=NEVER).
//
// # Delivery
//
// Claim (blocking) and Due (polling) hand out messages that have a
// recipient due, each to one caller at a time, until Unclaim. The caller
// reads the data with Open, attempts the recipients in Message.Due and
// records each outcome; the message leaves the queue when its last
// recipient is final. Claims live in memory only: after a crash a message
// whose outcome was not yet recorded is delivered again, so a recipient can
// get a message twice around a crash, never zero times.
//
// # Administration
//
// One process owns a spool (the lock file). `sekisho queue` reads a
// spool with Inspect, which replays the segments without the lock, and
// changes it with Control: when a gateway holds the lock, the command is
// written to ctl/ (atomically, via a rename), the gateway takes it by
// renaming it (so a command withdrawn on timeout runs either entirely or
// not at all), applies it through the committer and writes a reply.
package queue
