#!/bin/sh
# Installs sekisho the way docs/layout.md describes: builds the binary,
# creates the sekisho user and its folders, installs the binary, the
# systemd unit, the documentation and an example configuration. Running it
# again updates the binary, the unit and the documentation and repairs
# owners and modes; it never overwrites /etc/sekisho/sekisho.yaml.
#
# usage: packaging/install.sh [--dry-run] [--prefix DIR] [--binary FILE]
#   --dry-run      print what would be done, change nothing
#   --prefix DIR   where bin/ and share/ go (default /usr/local)
#   --binary FILE  install this binary instead of building one
# Environment: DESTDIR stages everything under a folder (for packaging);
# then no user is created and owners are left to the package.
set -eu

PREFIX=/usr/local
DRY=0
BINARY=""
while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) DRY=1 ;;
	--prefix) PREFIX=${2:?--prefix needs a folder}; shift ;;
	--prefix=*) PREFIX=${1#--prefix=} ;;
	--binary) BINARY=${2:?--binary needs a file}; shift ;;
	--binary=*) BINARY=${1#--binary=} ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
DESTDIR=${DESTDIR:-}
USER_NAME=sekisho
SRC=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '%s\n' "$*"; }
# run prints a command and, unless --dry-run, runs it.
run() {
	say "+ $*"
	[ "$DRY" = 1 ] || "$@"
}

if [ -z "$DESTDIR" ] && [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
	echo "install.sh: run as root (or with DESTDIR=... to stage, or --dry-run)" >&2
	exit 1
fi

# 1. The binary.
if [ -z "$BINARY" ]; then
	BUILD=$(mktemp -d "${TMPDIR:-/tmp}/sekisho-build.XXXXXX")
	trap 'rm -rf "$BUILD"' EXIT
	BINARY=$BUILD/sekisho
	say "+ (cd $SRC && go build -trimpath -o $BINARY ./cmd/sekisho)"
	if [ "$DRY" = 0 ]; then
		(cd "$SRC" && go build -trimpath -o "$BINARY" ./cmd/sekisho)
	fi
elif [ ! -x "$BINARY" ]; then
	echo "install.sh: $BINARY is not an executable" >&2
	exit 1
fi

# 2. The user: a system account with no shell and no home of its own.
if [ -n "$DESTDIR" ]; then
	say "# DESTDIR is set: not creating the $USER_NAME user; owners are left to the package"
elif getent passwd "$USER_NAME" >/dev/null 2>&1; then
	say "# user $USER_NAME exists"
else
	nologin=/usr/sbin/nologin
	[ -x $nologin ] || nologin=/sbin/nologin
	run useradd --system --user-group --home-dir /var/lib/sekisho --no-create-home \
		--shell "$nologin" --comment "sekisho SMTP gateway" "$USER_NAME"
fi

# dir MODE OWNER:GROUP PATH creates a folder and sets its owner and mode.
dir() {
	run install -d -m "$1" "$DESTDIR$3"
	if [ -z "$DESTDIR" ]; then
		run chown "$2" "$DESTDIR$3"
		run chmod "$1" "$DESTDIR$3"
	fi
}

# file MODE OWNER:GROUP SOURCE TARGET installs (replacing) one file.
file() {
	run install -m "$1" "$3" "$DESTDIR$4"
	[ -n "$DESTDIR" ] || run chown "$2" "$DESTDIR$4"
}

# 3. The folders. The configuration is readable by the service, writable
# by root only. The state folder is setgid, so that files root writes
# there (accounts sync) belong to the sekisho group and stay readable.
dir 0750 root:$USER_NAME /etc/sekisho
dir 2750 $USER_NAME:$USER_NAME /var/lib/sekisho
dir 0750 $USER_NAME:$USER_NAME /var/spool/sekisho
# Shared system folders are created when missing, never re-owned.
run install -d -m 0755 "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/doc/sekisho" "$DESTDIR/etc/systemd/system"

# 4. Binary, unit, documentation.
file 0755 root:root "$BINARY" "$PREFIX/bin/sekisho"
UNIT=$SRC/packaging/sekisho.service
if [ "$PREFIX" != /usr/local ]; then
	UNIT_TMP=$(mktemp "${TMPDIR:-/tmp}/sekisho.service.XXXXXX")
	sed "s|/usr/local/|$PREFIX/|g" "$UNIT" >"$UNIT_TMP"
	UNIT=$UNIT_TMP
fi
file 0644 root:root "$UNIT" /etc/systemd/system/sekisho.service
# logrotate for the log files of relay.log (SIGUSR1 reopens them).
run install -d -m 0755 "$DESTDIR/etc/logrotate.d"
file 0644 root:root "$SRC/packaging/sekisho.logrotate" /etc/logrotate.d/sekisho
[ -z "${UNIT_TMP:-}" ] || rm -f "$UNIT_TMP"
for doc in README.md README.ja.md ARCHITECTURE.md docs/configuration.md docs/layout.md docs/logging.md docs/epost-migration.md \
	accounts/FORMAT.md:accounts-FORMAT.md rewrite/FORMAT.md:rewrite-FORMAT.md; do
	from=${doc%%:*}
	to=${doc#*:}
	[ "$to" != "$doc" ] || to=$(basename "$from")
	[ -f "$SRC/$from" ] && file 0644 root:root "$SRC/$from" "$PREFIX/share/doc/sekisho/$to"
done

# 5. The example configuration: always as *.example, and as the live
# configuration only when there is none yet.
file 0640 root:$USER_NAME "$SRC/configs/municipal-gateway.yaml" /etc/sekisho/sekisho.yaml.example
file 0640 root:$USER_NAME "$SRC/configs/epost-migration.yaml" /etc/sekisho/epost-migration.yaml.example
if [ -e "$DESTDIR/etc/sekisho/sekisho.yaml" ]; then
	say "# /etc/sekisho/sekisho.yaml exists: kept as it is"
else
	file 0640 root:$USER_NAME "$SRC/configs/municipal-gateway.yaml" /etc/sekisho/sekisho.yaml
fi
# The example's rewrite table, under the name the example refers to.
if [ -e "$DESTDIR/etc/sekisho/lgwan-domains.example.tsv" ]; then
	say "# /etc/sekisho/lgwan-domains.example.tsv exists: kept as it is"
else
	file 0640 root:$USER_NAME "$SRC/configs/lgwan-domains.example.tsv" /etc/sekisho/lgwan-domains.example.tsv
fi

# 6. systemd.
if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	run systemctl daemon-reload
fi

cat <<EOF

sekisho is installed$( [ "$DRY" = 1 ] && echo " (dry run: nothing was changed)" ).
Next:
  1. edit /etc/sekisho/sekisho.yaml (the annotated example: domains, inner
     server, LGWAN relay, inner networks)
  2. sudo -u $USER_NAME $PREFIX/bin/sekisho config check -c /etc/sekisho/sekisho.yaml
  3. systemctl enable --now sekisho; journalctl -u sekisho -f
EOF
