#!/usr/bin/env bash
# Builds the image pairs the delta tests and bench use, offline, FROM the Debian fixture
# (dockpack-fixture/debian:bookworm, built by scripts/fixtures.sh), each only when its tag is
# missing. No apt downloads: "packages" are copies of the fixture's own files, an "upgrade"
# rewrites a few of them, the app layer is generated text.
#
# Usage: scripts/delta-fixtures.sh small|bench
#   small  dockpack-test/delta-small:1, :2  package layer ~6 MB, app ~5 MB
#   bench  dockpack-bench/delta-app:1, :2   package layers ~70 MB, app ~40 MB
# Layers of both versions: Debian base (shared), a shared config layer (build cache), the
# package layer (v2: one "package" upgraded — a few files change), the app layer (v2: a few modules change). Config: labels, env, entrypoint.
# Prints the two tags on stdout.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DOCKER_BUILDKIT=0
SCALE="${1:-small}"
case "$SCALE" in
  small) REPO=dockpack-test/delta-small; PKGS='/usr/bin/[a-f]*'; MODULES=60; LINES=4000 ;;
  bench) REPO=dockpack-bench/delta-app; PKGS='/usr/lib/x86_64-linux-gnu /usr/bin /usr/sbin'; MODULES=400; LINES=14000 ;;
  *) echo "delta-fixtures: unknown scale '$SCALE' (small|bench)" >&2; exit 2 ;;
esac
bash "$HERE/fixtures.sh" debian >/dev/null
# one build at a time: the lock is this script itself, so no lock file is left in /tmp
exec 9<"${BASH_SOURCE[0]}"
flock 9
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM dockpack-fixture/debian:bookworm
RUN mkdir -p /etc/demo && echo "shared=1" > /etc/demo/common.conf
ARG V=1
RUN mkdir -p /opt/pkgs && for p in $PKGS; do cp -a \$p /opt/pkgs/; done \\
 && echo "libdemo \$V.0" > /opt/pkgs/VERSION \\
 && if [ "\$V" = 2 ]; then \\
      find /opt/pkgs -type f -size +20k | sort | sed -n '3p;17p;40p;41p;90p' | while read -r f; do \\
        n=\$(wc -c < "\$f"); for off in 1 3 7; do \\
          head -c 2048 /dev/urandom | dd of="\$f" bs=1 seek=\$((n * off / 8)) conv=notrunc status=none; done; \\
        printf 'upgraded to %s' "\$V" >> "\$f"; done; \\
    fi
RUN mkdir -p /srv/app && i=0; while [ \$i -lt $MODULES ]; do \\
      s=\$i; if [ "\$V" = 2 ] && [ \$((i % 37)) = 3 ]; then s=\$((i + 1000)); fi; \\
      seq \$((s * 13)) \$((s * 13 + $LINES)) | awk '{print "line", \$1, \$1 * 7 % 1013, "module"}' > /srv/app/mod\$i.txt; i=\$((i + 1)); done \\
 && echo "app \$V" > /srv/app/VERSION
LABEL org.example.name="delta-demo" org.example.version="\$V"
ENV APP_VERSION=\$V PATH=/opt/pkgs/bin:/usr/local/bin:/usr/bin:/bin
ENTRYPOINT ["/bin/sh", "-c", "cat /srv/app/VERSION"]
DOCKERFILE
for v in 1 2; do
  if ! docker image inspect "$REPO:$v" >/dev/null 2>&1; then
    echo "delta-fixtures: building $REPO:$v" >&2
    docker build -q --build-arg "V=$v" -t "$REPO:$v" "$ctx" >/dev/null
  fi
  echo "$REPO:$v"
done
