#!/bin/sh
# ANSAI uninstaller: stops and removes the systemd units, the commands and <prefix> (the bundles and the private
# Node). Keeps /etc/ansai (configuration) and /var/lib/ansai (state, audit trail) unless --purge. Idempotent.
#
#   sudo /opt/ansai/share/uninstall.sh            # what install.sh put there
#   sudo /opt/ansai/share/uninstall.sh --purge    # and the configuration, the state and the caches
#   ./uninstall.sh --root /tmp/rootfs             # from a staging tree
set -eu

UNITS='ansai-agent.timer ansai-agent.service ansai-report@.service'
COMMANDS='ansai ansai-agent'

prefix=
bindir=
root=
purge=0
dry_run=0

usage() {
  cat <<'EOF'
Usage: uninstall.sh [options]

  --prefix DIR   where ANSAI is installed (default: the install this script belongs to, else /opt/ansai)
  --bindir DIR   where the commands are linked (default: what install.sh recorded, else /usr/local/bin)
  --root DIR     remove from DIR as if it were / (a rootfs or image); runs no systemctl
  --purge        also remove /etc/ansai, /var/lib/ansai and /var/cache/ansai
  --dry-run      print what would be done, change nothing
  -h, --help     this help
EOF
}

say() { printf 'uninstall.sh: %s\n' "$*"; }
die() {
  printf 'uninstall.sh: error: %s\n' "$*" >&2
  exit 1
}

check_path() {
  case $2 in
  /*) ;;
  *) die "$1 must be an absolute path: $2" ;;
  esac
  case $2 in
  *[!A-Za-z0-9._/+-]* | */../* | */.. | */./* | */. | *//*) die "$1 may hold only letters, digits and . _ / + - (no . or .. parts): $2" ;;
  esac
}

while [ $# -gt 0 ]; do
  case $1 in
  --prefix | --bindir | --root)
    [ $# -ge 2 ] || die "$1 needs a value"
    case $1 in
    --prefix) prefix=$2 ;;
    --bindir) bindir=$2 ;;
    --root) root=$2 ;;
    esac
    shift 2
    ;;
  --purge) purge=1 && shift ;;
  --dry-run) dry_run=1 && shift ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    usage >&2
    die "unknown option: $1"
    ;;
  esac
done

if [ -n "$root" ]; then
  root=${root%/}
  check_path --root "$root"
  [ -d "$root" ] || die "--root $root is not a directory"
fi

# read_info FILE KEY: a value from install.sh's install-info (KEY=value lines; read, never sourced)
read_info() {
  sed -n "s/^$2=//p" "$1" | head -n 1
}

if [ -z "$prefix" ]; then
  # this script as installed: <prefix>/share/uninstall.sh
  here=$(cd "$(dirname "$0")" && pwd)
  if [ -z "$root" ] && [ -f "$here/install-info" ]; then
    prefix=$(read_info "$here/install-info" prefix)
  else
    prefix=/opt/ansai
  fi
fi
prefix=${prefix%/}
check_path --prefix "$prefix"
case $prefix in
/ | /usr | /usr/local | /opt | /etc | /var | /bin | /sbin | /lib | /home | /root | /tmp)
  die "--prefix $prefix is a system directory, not an ANSAI install"
  ;;
esac
info=$root$prefix/share/install-info
if [ -z "$bindir" ]; then
  if [ -f "$info" ]; then bindir=$(read_info "$info" bindir); fi
  bindir=${bindir:-/usr/local/bin}
fi
bindir=${bindir%/}
check_path --bindir "$bindir"

if [ -z "$root" ] && [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 ...), or use --root DIR for a staging tree, or --dry-run"
fi

act() {
  if [ "$dry_run" = 1 ]; then
    printf '  would run: %s\n' "$*"
  else
    "$@"
  fi
}

remove() { # remove PATH...: rm -rf what exists, saying so
  for p in "$@"; do
    if [ -e "$p" ] || [ -L "$p" ]; then
      act rm -rf "$p"
      [ "$dry_run" = 1 ] || say "removed $p"
    fi
  done
}

# --- systemd: stop first, so no cycle starts while the files go -------------------------------------------------
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if [ -f /etc/systemd/system/ansai-agent.timer ]; then
    act systemctl disable --now ansai-agent.timer || true
  fi
  act systemctl stop ansai-agent.service 'ansai-report@*.service' || true
fi
remove "$root/etc/systemd/system/timers.target.wants/ansai-agent.timer"
for unit in $UNITS; do
  remove "$root/etc/systemd/system/$unit"
done
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  act systemctl daemon-reload
  act systemctl reset-failed ansai-agent.service ansai-agent.timer 'ansai-report@*.service' 2>/dev/null || true
fi

# --- the commands: only ANSAI's symlinks ---------------------------------------------------------------------------
for cmd in $COMMANDS; do
  link=$root$bindir/$cmd
  if [ -L "$link" ]; then
    case $(readlink "$link") in
    *"$prefix/bin/$cmd") remove "$link" ;;
    *) say "kept $link: it does not point into $prefix" ;;
    esac
  elif [ -e "$link" ]; then
    say "kept $link: not a symlink of ANSAI's"
  fi
done

# --- the program ------------------------------------------------------------------------------------------------
if [ -d "$root$prefix" ]; then
  if [ -f "$info" ] || [ -f "$root$prefix/lib/ansai.mjs" ]; then
    remove "$root$prefix"
  else
    die "$root$prefix does not look like an ANSAI install (no share/install-info, no lib/ansai.mjs): not removing it"
  fi
fi

if [ "$purge" = 1 ]; then
  remove "$root/etc/ansai" "$root/var/lib/ansai" "$root/var/cache/ansai"
else
  for d in /etc/ansai /var/lib/ansai; do
    if [ -d "$root$d" ]; then say "kept $root$d (--purge removes it)"; fi
  done
fi

if [ "$dry_run" = 1 ]; then
  say "dry run: nothing was changed"
else
  say "done"
fi
