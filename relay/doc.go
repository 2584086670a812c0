// Package relay holds the SMTP engine's rooms; it has no code of its own.
// A message goes through them in this order (ARCHITECTURE.md names the
// files):
//
//   - gateway: the engine — listeners and their connection caps, the
//     snapshot a reload swaps, the relay section's configuration and its
//     check, the dry runs;
//   - smtpd: the SMTP server protocol, which asks a Handler at each stage;
//   - session: that Handler — each stage decided by policy (guard, the
//     receive-time rewrite, routing), inspect at DATA, archive copies,
//     then the queue;
//   - queue: the durable spool;
//   - runner: the delivery workers — routing, the delivery-time rewrite,
//     sanitize, DKIM signing (inspect), delivery (the SMTP client), the
//     retry schedule and DSNs (dsn);
//   - ops: metrics, where log records go (logsink), the live trace, and
//     the message trace derived from the log (events).
//
// Beside the path: store keeps the message trace and the console's records
// (SQLite, or PostgreSQL shared by several gateways); approval carries out
// the requests staff and administrators make (a quarantined original's
// release) on the gateway that holds the item; console is the web console,
// a client of the running engine as the command line is.
//
// auth (SMTP AUTH) and guard (the relay rules) serve policy; inspect holds
// msgauth, milter and dkimsign; sanitize holds the quarantine.
package relay
