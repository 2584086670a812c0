#!/bin/sh
# Benchmarks sekisho and, when Postfix is installed, a Postfix configured
# for the same job, in the same run, and prints the figures and the ratios.
#
# The job: a relay domain (city.bench.lg.jp) with 10,000 valid recipients;
# the sender's regional domain (city.bench.aichi.jp) rewritten to the LG
# domain in the envelope and the headers; everything relayed to a counting
# SMTP sink that sekisho-bench runs on loopback. Postfix does it with
# relay_domains + relay_recipient_maps, canonical_maps and a transport to
# the sink; sekisho with a mirrored domain, a rewrite rule and a route.
#
# Runs, for each message size in SIZES, each with MESSAGES messages:
#   concurrency 10, a new connection per message
#   concurrency 10, reused connections
#   concurrency 50, a new connection per message (p99 latency, memory)
# and once: sekisho holding IDLE idle connections (memory). Every run
# starts with the load tool's own one-hop ceiling (the same load straight
# to a sink of its own), printed beside the figures.
#
# Usage: scripts/bench-vs-postfix.sh      (from the repository root)
# Environment: MESSAGES (10000), SIZES (message sizes in bytes, "2048
# 102400"; SIZE=N is SIZES=N), WARMUP (2000 messages to each server
# first, not reported; 0: none), IDLE (10000), OUT (a new
# temporary folder: the JSON results and logs), POSTFIX_PORT (12526),
# SINK_PORT (12527), NO_POSTFIX=1 to measure sekisho only. PIN (default 1,
# when taskset exists and there are at least 2 CPUs) runs each server on
# CPU 0 and the load tool with its sink on CPU 1, so that the figures
# compare the servers on equal footing and not their share of the load
# tool's CPU; PIN=0 lets everything share every CPU.
# CONSOLE=1 also measures sekisho with the console, its store and the
# message trace on: each run REPEAT times (default 5), taking turns with
# sekisho without them, and prints the ratio of the two sides' medians
# (one pair of runs differs by up to 10 % on a shared machine).
# Postfix runs as a separate instance in a temporary folder (its own
# main.cf, queue and ports on 127.0.0.1); the system's Postfix, if any, is
# not touched. Running Postfix needs root; without root, or without
# Postfix, only sekisho is measured.
set -eu

MESSAGES=${MESSAGES:-10000}
SIZES=${SIZES:-${SIZE:-2048 102400}}
IDLE=${IDLE:-10000}
POSTFIX_PORT=${POSTFIX_PORT:-12526}
SINK_PORT=${SINK_PORT:-12527}
LG=city.bench.lg.jp
REGIONAL=city.bench.aichi.jp
RECIPIENTS=10000

cd "$(dirname "$0")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sekisho-bench.XXXXXX")
OUT=${OUT:-$WORK/results}
chmod 755 "$WORK" # Postfix daemons run as the postfix user
mkdir -p "$OUT" "$WORK/bin"
PATH=$PATH:/usr/sbin:/sbin

PF=""
cleanup() {
	if [ -n "$PF" ] && [ -f "$PF/spool/pid/master.pid" ]; then
		postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK/bin" "$WORK/postfix/spool" "$WORK/postfix/data"
}
trap cleanup EXIT INT TERM

echo "building sekisho and sekisho-bench"
go build -o "$WORK/bin/" ./cmd/sekisho ./cmd/sekisho-bench
BENCH=$WORK/bin/sekisho-bench
SEKISHO=$WORK/bin/sekisho
echo "load at the start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
SERVER_CPU=""
if [ "${PIN:-1}" = "1" ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	echo "PIN=1: servers on CPU 0, the load tool and its sink on CPU 1"
	SERVER_CPU="taskset -c 0"
	BENCH="taskset -c 1 $BENCH"
	printf '#!/bin/sh\nexec taskset -c 0 %s "$@"\n' "$WORK/bin/sekisho" >"$WORK/bin/sekisho-pinned"
	chmod +x "$WORK/bin/sekisho-pinned"
	SEKISHO=$WORK/bin/sekisho-pinned
fi
COMMON="--messages $MESSAGES --recipients $RECIPIENTS --domain $LG --regional $REGIONAL"

have_postfix() {
	[ "${NO_POSTFIX:-}" = "1" ] && { echo "NO_POSTFIX=1: measuring sekisho only"; return 1; }
	command -v postfix >/dev/null 2>&1 || { echo "Postfix is not installed: measuring sekisho only"; return 1; }
	[ "$(id -u)" = 0 ] || { echo "Postfix needs root to run: measuring sekisho only"; return 1; }
	id postfix >/dev/null 2>&1 || { echo "no postfix user: measuring sekisho only"; return 1; }
	return 0
}

# start_postfix sets up and starts the Postfix instance in $WORK/postfix.
start_postfix() {
	PF=$WORK/postfix
	mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
	chown postfix "$PF/data"
	cp /etc/postfix/master.cf "$PF/etc/master.cf"
	cat >"$PF/etc/main.cf" <<EOF
# sekisho-bench: Postfix doing the benchmark's job, stock settings otherwise.
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.invalid
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# The relay domain and its valid recipients (unknown ones: 550 at RCPT).
relay_domains = $LG
relay_recipient_maps = hash:$PF/etc/relay_recipients
# Regional -> LG, envelope and headers (canonical_classes: all four).
canonical_maps = hash:$PF/etc/canonical
# Everything to the sink.
transport_maps = hash:$PF/etc/transport
relayhost = [127.0.0.1]:$SINK_PORT
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = $PF
maillog_file = $PF/postfix.log
biff = no
EOF
	i=1
	while [ $i -le $RECIPIENTS ]; do
		printf 'user%05d@%s OK\n' $i $LG
		i=$((i + 1))
	done >"$PF/etc/relay_recipients"
	echo "@$REGIONAL @$LG" >"$PF/etc/canonical"
	echo "$LG smtp:[127.0.0.1]:$SINK_PORT" >"$PF/etc/transport"
	for m in relay_recipients canonical transport; do
		postmap -c "$PF/etc" "hash:$PF/etc/$m"
	done
	# smtpd on a loopback port instead of *:25; no chroot (the queue is
	# in a temporary folder).
	postconf -c "$PF/etc" -MX smtp/inet
	postconf -c "$PF/etc" -M "127.0.0.1:$POSTFIX_PORT/inet = 127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd"
	postconf -c "$PF/etc" -F '*/*/chroot = n'
	$SERVER_CPU postfix -c "$PF/etc" start
	n=0
	until postfix -c "$PF/etc" status >/dev/null 2>&1 && [ -s "$PF/spool/pid/master.pid" ]; do
		n=$((n + 1))
		[ $n -lt 50 ] || { echo "Postfix did not start; see $PF/postfix.log"; return 1; }
		sleep 0.2
	done
	sleep 1 # let master bind its listener and start qmgr
	POSTFIX_PID=$(tr -d ' \n' <"$PF/spool/pid/master.pid")
	echo "Postfix $(postconf -c "$PF/etc" -h mail_version) started: 127.0.0.1:$POSTFIX_PORT, master pid $POSTFIX_PID"
}

run_sekisho() { # name flags...
	name=$1
	shift
	echo
	$BENCH --name sekisho --sekisho "$SEKISHO" $COMMON "$@" --json "$OUT/sekisho-$name.json" || true
}

run_postfix() { # name flags...
	name=$1
	shift
	[ -n "$PF" ] || return 0
	echo
	$BENCH --name postfix --target "127.0.0.1:$POSTFIX_PORT" --sink "127.0.0.1:$SINK_PORT" \
		--mem-pid "$POSTFIX_PID" $COMMON "$@" --json "$OUT/postfix-$name.json" || true
}

if have_postfix; then
	start_postfix || PF=""
fi

REPEAT=${REPEAT:-5}

# The first measurement after the machine sat idle runs slow (sekisho's
# first case came out 10 to 20 % below the same run repeated, in every
# sequence measured on a shared VM), so each server first takes WARMUP
# messages of the first size, not reported.
WARMUP=${WARMUP:-2000}
if [ "$WARMUP" -gt 0 ]; then
	wsize=${SIZES%% *}
	echo
	echo "warm-up: $WARMUP messages of $wsize bytes to each server, not reported"
	WCOMMON="--messages $WARMUP --recipients $RECIPIENTS --domain $LG --regional $REGIONAL --size $wsize --ceiling 0"
	$BENCH --name warmup --sekisho "$SEKISHO" $WCOMMON >/dev/null 2>&1 || true
	if [ -n "$PF" ]; then
		$BENCH --name warmup --target "127.0.0.1:$POSTFIX_PORT" --sink "127.0.0.1:$SINK_PORT" $WCOMMON >/dev/null 2>&1 || true
	fi
fi

console_run() { # name flags...: the same run with the console and the trace on, in turns with more plain ones
	[ "${CONSOLE:-}" = "1" ] || return 0
	cname=$1 # not name: run_sekisho sets that
	shift
	i=1
	while [ "$i" -le "$REPEAT" ]; do
		# The first plain run is the one the tables show.
		[ "$i" -eq 1 ] || run_sekisho "$cname-r$i" "$@"
		echo
		$BENCH --name sekisho+console --sekisho "$SEKISHO" $COMMON "$@" --console --json "$OUT/console-$cname-r$i.json" || true
		i=$((i + 1))
	done
}

# runs_of LIST: the comma-separated JSON files of one side that exist.
runs_of() {
	list=""
	for f in "$@"; do
		[ -f "$f" ] && list="$list${list:+,}$f"
	done
	echo "$list"
}

for size in $SIZES; do
	echo
	echo "== $size-byte messages"
	run_sekisho "$size-c10-new" --size "$size" --concurrency 10
	console_run "$size-c10-new" --size "$size" --concurrency 10
	run_postfix "$size-c10-new" --size "$size" --concurrency 10
	run_sekisho "$size-c10-reuse" --size "$size" --concurrency 10 --reuse
	console_run "$size-c10-reuse" --size "$size" --concurrency 10 --reuse
	run_postfix "$size-c10-reuse" --size "$size" --concurrency 10 --reuse
	run_sekisho "$size-c50-new" --size "$size" --concurrency 50
	console_run "$size-c50-new" --size "$size" --concurrency 50
	run_postfix "$size-c50-new" --size "$size" --concurrency 50
done
run_sekisho idle --messages 0 --idle "$IDLE" --hold 5s

echo
echo "== results (JSON in $OUT; load when done: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null))"
for size in $SIZES; do
	echo
	echo "=== $size-byte messages"
	echo
	files=""
	for f in sekisho-$size-c10-new console-$size-c10-new-r1 postfix-$size-c10-new \
		sekisho-$size-c10-reuse console-$size-c10-reuse-r1 postfix-$size-c10-reuse \
		sekisho-$size-c50-new console-$size-c50-new-r1 postfix-$size-c50-new; do
		[ -f "$OUT/$f.json" ] && files="$files $OUT/$f.json"
	done
	# $files is a list of paths without spaces (mktemp names).
	# shellcheck disable=SC2086
	[ -n "$files" ] && $BENCH report $files
	for run in c10-new c10-reuse c50-new; do
		plain=$(runs_of "$OUT/sekisho-$size-$run.json" "$OUT"/sekisho-"$size-$run"-r*.json)
		console=$(runs_of "$OUT"/console-"$size-$run"-r*.json)
		if [ -n "$console" ] && [ -n "$plain" ]; then
			echo
			echo "-- $run: with the console and the message trace against without (same run, runs in turns)"
			$BENCH compare "$console" "$plain"
		fi
	done
	if [ -n "$PF" ]; then
		for run in c10-new c10-reuse c50-new; do
			if [ -f "$OUT/sekisho-$size-$run.json" ] && [ -f "$OUT/postfix-$size-$run.json" ]; then
				echo
				$BENCH compare "$OUT/sekisho-$size-$run.json" "$OUT/postfix-$size-$run.json"
			fi
		done
	fi
done
if [ -f "$OUT/sekisho-idle.json" ]; then
	echo
	$BENCH report "$OUT/sekisho-idle.json"
fi
