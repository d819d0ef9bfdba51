#!/usr/bin/env bash
# Builds dockpack's offline fixture images, each only when its tag is missing (no registry is
# ever contacted; Debian packages come from deb.debian.org through debootstrap).
#
# Usage: scripts/fixtures.sh [name...]      (default: all)
#   scratch  dockpack-fixture/scratch:1      docker import of an empty tar, dummy CMD
#   busybox  dockpack-fixture/busybox:1      Debian's static busybox + applet links, /etc/passwd, /tmp
#   debian   dockpack-fixture/debian:bookworm  debootstrap --variant=minbase bookworm
#   node     dockpack-fixture/node:20        the debian fixture + this machine's node binary
#   python   dockpack-fixture/python:3       debootstrap minbase bookworm with python3-minimal
#   pyslim   dockpack-fixture/pyslim:3       debootstrap minbase bookworm with python3 (full standard
#                                            library, like python:3.12-slim; tool compile tests)
# Full tags are accepted too. Prints the tags on stdout, progress on stderr.
#
# Env: DOCKPACK_FIXTURE_CACHE (default /var/cache/dockpack-fixtures, else ~/.cache/…): root
#      filesystem tarballs (zstd) and downloaded .debs, so a rebuild after `docker rmi` takes
#      seconds. DOCKPACK_DEBIAN_MIRROR (default http://deb.debian.org/debian).
#      DOCKPACK_FIXTURE_REBUILD=1 rebuilds the images even when the tags exist.
# One flock per image: concurrent callers wait for the first build instead of repeating it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIRROR="${DOCKPACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
if [ -n "${DOCKPACK_FIXTURE_CACHE:-}" ]; then
  CACHE="$DOCKPACK_FIXTURE_CACHE"
elif mkdir -p /var/cache/dockpack-fixtures 2>/dev/null && [ -w /var/cache/dockpack-fixtures ]; then
  CACHE=/var/cache/dockpack-fixtures
else
  CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/dockpack-fixtures"
fi
mkdir -p "$CACHE/debs"
export DOCKER_BUILDKIT=0

log() { echo "fixtures: $*" >&2; }
die() { echo "fixtures: error: $*" >&2; exit 1; }

need() { # program, debian package
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed (apt-get install $2, or run scripts/setup.sh)"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

tag_of() {
  case "$1" in
    scratch | dockpack-fixture/scratch:1) echo dockpack-fixture/scratch:1 ;;
    busybox | dockpack-fixture/busybox:1) echo dockpack-fixture/busybox:1 ;;
    debian | dockpack-fixture/debian:bookworm) echo dockpack-fixture/debian:bookworm ;;
    node | dockpack-fixture/node:20) echo dockpack-fixture/node:20 ;;
    python | dockpack-fixture/python:3) echo dockpack-fixture/python:3 ;;
    pyslim | dockpack-fixture/pyslim:3) echo dockpack-fixture/pyslim:3 ;;
    *) die "unknown fixture '$1' (known: scratch busybox debian node python pyslim)" ;;
  esac
}

# with_lock NAME CMD... : runs CMD under an exclusive flock on $CACHE/NAME.lock
with_lock() {
  local name="$1"
  shift
  local fd
  exec {fd}>"$CACHE/$name.lock"
  if ! flock -n "$fd"; then
    log "$name: another build is running, waiting for it"
    flock "$fd"
  fi
  "$@"
  local rc=$?
  exec {fd}>&-
  return $rc
}

TMPS=()
cleanup() { for d in "${TMPS[@]}"; do rm -rf -- "$d"; done; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# mktmp: makes a temp folder removed at exit and puts its path in $TMPD. (Not `$(mktmp)`: a
# command substitution runs in a subshell, whose TMPS+= the exit trap never sees.)
mktmp() {
  TMPD="$(mktemp -d "${TMPDIR:-/tmp}/dockpack-fixture.XXXXXX")"
  TMPS+=("$TMPD")
}

# build_tag SHORT TAG: builds under the image's lock; a rebuild moves the tag, so the image it
# left untagged is removed (unless a container or a child image still uses it).
build_tag() {
  local old new
  old="$(docker image inspect -f '{{.Id}}' "$2" 2>/dev/null || true)"
  with_lock "$1" "build_$1"
  new="$(docker image inspect -f '{{.Id}}' "$2" 2>/dev/null || true)"
  if [ -n "$old" ] && [ "$old" != "$new" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

fresh() { [ "${DOCKPACK_FIXTURE_REBUILD:-}" != 1 ] && have_image "$1"; }

build_scratch() {
  local tag=dockpack-fixture/scratch:1
  fresh "$tag" && return 0
  log "$tag: importing an empty tar"
  tar -cf - -T /dev/null | docker import -c 'CMD ["/dockpack-fixture-scratch"]' - "$tag" >/dev/null
}

build_busybox() {
  local tag=dockpack-fixture/busybox:1
  fresh "$tag" && return 0
  need busybox busybox-static
  local bb
  bb="$(command -v busybox)"
  file -L "$bb" 2>/dev/null | grep -q 'statically linked' || [ ! -x /usr/bin/file ] ||
    die "$bb is not statically linked (apt-get install busybox-static)"
  log "$tag: assembling a root filesystem from $bb"
  local root
  mktmp
  root="$TMPD/root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev,run}
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  cp "$bb" "$root/bin/busybox"
  local applet
  while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$bb" --list-full)
  install -m 0755 "$HERE/fixtures/adduser.sh" "$root/usr/sbin/adduser"
  install -m 0755 "$HERE/fixtures/addgroup.sh" "$root/usr/sbin/addgroup"
  cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
  cat >"$root/etc/group" <<'G'
root:x:0:
daemon:x:1:
users:x:100:
nogroup:x:65534:
G
  echo 'root:*::0:::::' >"$root/etc/shadow"
  chmod 0640 "$root/etc/shadow"
  echo "hosts: files dns" >"$root/etc/nsswitch.conf"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import -c 'CMD ["sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' - "$tag" >/dev/null
}

# debootstrap_tar NAME INCLUDE: ensures $CACHE/NAME.tar.zst holds a minbase bookworm rootfs
debootstrap_tar() {
  local name="$1" include="$2"
  local out="$CACHE/$name.tar.zst"
  [ -s "$out" ] && [ "${DOCKPACK_FIXTURE_REBUILD:-}" != 2 ] && return 0
  need debootstrap debootstrap
  need zstd zstd
  [ "$(id -u)" = 0 ] || die "debootstrap needs root (run as root, or run scripts/setup.sh as root once)"
  local root
  mktmp
  root="$TMPD/root"
  log "$name: debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes the first time)"
  local start=$SECONDS
  debootstrap --variant=minbase ${include:+--include="$include"} --cache-dir="$CACHE/debs" \
    "$SUITE" "$root" "$MIRROR" >"$CACHE/$name.debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $CACHE/$name.debootstrap.log: $(tail -n 3 "$CACHE/$name.debootstrap.log")"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
  rm -rf "$root"/dev/* "$root"/proc/* "$root"/sys/* 2>/dev/null || true
  log "$name: root filesystem ready after $((SECONDS - start)) s; packing $out"
  tar -C "$root" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$out.tmp"
  mv -f "$out.tmp" "$out"
}

import_rootfs() { # name tag
  log "$2: importing $CACHE/$1.tar.zst"
  zstd -q -dc "$CACHE/$1.tar.zst" |
    docker import -c 'CMD ["bash"]' \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$2" >/dev/null
}

build_debian() {
  local tag=dockpack-fixture/debian:bookworm
  fresh "$tag" && return 0
  debootstrap_tar debian-bookworm ""
  import_rootfs debian-bookworm "$tag"
}

build_python() {
  local tag=dockpack-fixture/python:3
  fresh "$tag" && return 0
  debootstrap_tar python3-bookworm "python3-minimal"
  import_rootfs python3-bookworm "$tag"
  docker run --rm --network none "$tag" python3 -V >/dev/null ||
    die "$tag: python3 does not run in the image"
}

build_pyslim() {
  local tag=dockpack-fixture/pyslim:3
  fresh "$tag" && return 0
  debootstrap_tar python3-full-bookworm "python3"
  import_rootfs python3-full-bookworm "$tag"
  docker run --rm --network none "$tag" python3 -c 'import json, sys' >/dev/null ||
    die "$tag: python3 with its standard library does not run in the image"
}

build_node() {
  local tag=dockpack-fixture/node:20
  fresh "$tag" && return 0
  build_tag debian dockpack-fixture/debian:bookworm
  local node
  node="$(command -v node)" || die "node is not installed on this machine"
  node="$(readlink -f "$node")"
  local version
  version="$("$node" -v)"
  log "$tag: adding $node ($version) to dockpack-fixture/debian:bookworm"
  local ctx
  mktmp
  ctx="$TMPD"
  cp "$node" "$ctx/node"
  cat >"$ctx/Dockerfile" <<D
FROM dockpack-fixture/debian:bookworm
COPY node /usr/local/bin/node
CMD ["node"]
D
  docker build -q -t "$tag" "$ctx" >/dev/null
  docker run --rm --network none "$tag" node -v >/dev/null ||
    die "$tag: $node does not run on bookworm (check 'ldd $node': it needs glibc ≤ 2.36 and libstdc++6)"
}

need docker docker.io
need flock util-linux
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "no Docker Engine answers (start one: sudo systemctl start docker, or run scripts/setup.sh)"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(scratch busybox debian node python)
for n in "${names[@]}"; do
  tag="$(tag_of "$n")"
  short="${tag#dockpack-fixture/}"
  short="${short%%:*}"
  if ! fresh "$tag"; then
    build_tag "$short" "$tag"
    log "$tag: ready"
  fi
  echo "$tag"
done
