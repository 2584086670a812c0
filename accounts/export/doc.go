// Package export reads the inner mail server's account exports (TSV, CSV,
// address lists; Shift_JIS or UTF-8), E-Post's migration files (epstman
// alias commands, sender.dat) and LDAP / Active Directory searches into
// records with line numbers.
//
// Read is the export reader described below; ReadAliasCommands,
// ReadSenderDat (epost.go, senderdat.go) and ReadLDAP (ldap.go) describe
// their own sources. Every reader reports each bad line (or entry) with all
// its problems and returns ErrInvalidLines alongside what it could read.
//
// # Encoding
//
// With the encoding auto: a UTF-8 byte order mark means UTF-8; a UTF-16
// byte order mark means UTF-16 (Excel's "Unicode text"); a file that is
// valid UTF-8 is UTF-8; anything else is Shift_JIS, read as CP932
// (Windows-31J, with the NEC and IBM extensions such as ① and 髙, and
// user-defined characters as Windows maps them, into the Private Use Area).
// Decoding is accounts/charset's DecodeStrict. A file that does not decode
// cleanly is refused as a whole, naming its first bad line. CR LF and LF
// line ends are both accepted.
//
// # Format
//
// Lines that start with '#' and blank lines (also rows of empty cells, as
// spreadsheets leave) are skipped. With the format auto, the first other
// line decides: a tab makes it TSV, else a comma makes it CSV, else it is a
// list of addresses, one per line.
//
// TSV cells are split at tabs; a cell wrapped in double quotes is unquoted
// as Excel writes it, but cannot span lines. CSV is RFC 4180 as
// encoding/csv reads it, without lazy quotes: a quoted cell may hold
// commas, quotes and line breaks, and the row's line is where it starts.
//
// # Columns
//
// The first line of a TSV or CSV export is a header naming the columns,
// compared ignoring case, width, spaces, '-', '_' and '.':
//
//	account  account, user, userid, login, アカウント, ユーザー, ユーザ名: a local part or a full address
//	mail     mail, address, email, メールアドレス: a full address (wins over account when both are filled)
//	domain   domain, ドメイン: the domain of a local part, or a check of a full address's domain
//	name     name, display, displayname, 氏名, 名前, 表示名: the display name
//	flags    flags, status, フラグ, 状態: see below
//	secret   secret: the SMTP AUTH secret reference, passed through
//	alias    alias, エイリアス: an alias pattern (info@d, 2009*@d, *@d)
//	target   target, mappedto, 転送先, 実アドレス: the alias target (an address, or *@d)
//
// Other columns are ignored and reported as such in Result.Columns. A
// header commented out on the line just before the first row ("#mail\tname")
// is used when the first row is data. Options.Columns replaces the header;
// the first line is then skipped only when it looks like one (a cell is a
// column name and no cell holds '@'), so a header of unknown names is read
// as data and shows up as such.
// A list needs no header; its one column is the address (a first line that
// is a column name, such as "mail" or "アカウント", is its header).
//
// A row whose alias cell is filled is an alias; others are accounts. One
// export may mix both. An alias row may not fill the account, mail or flags
// cells; its name cell is ignored. A local part or alias without '@' takes its domain
// from the domain cell, else from Options.Domain.
//
// # Flags
//
// accounts.ParseFlags syntax (outbound_blocked,disabled; "" or "-" for
// none), or words separated by commas, spaces or '、': 外部送信禁止, 送信禁止,
// 受信のみ, receive_only for outbound_blocked; 無効, 停止, 利用停止, inactive,
// suspended for disabled; 有効, 通常, enabled, active, none for no flag.
//
// # Validation
//
// Every line is checked, and a line reports all its problems at once:
// field count against the header, address syntax (addr.Parse), canonical
// domain, a domain cell that contradicts the address, the only domain
// allowed (Options.Restrict), display names and secrets without control
// characters, known flags, alias pattern and target syntax, no flags on an
// alias, and duplicates within the export (the second names the first's
// line; local parts compare per Options.FoldLocal).
package export
