#!/usr/bin/env bash
# dockpack set-up: idempotent, safe to run many times.
# - installs the node dependencies (npm ci when package-lock.json changed) and builds dist/
# - on Debian/Ubuntu as root: installs the system programs dockpack uses when they are missing
#   and starts dockerd when no Docker Engine answers
# - elsewhere: prints what is missing and how to get it
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# program:debian-package pairs that dockpack and its tests call
PROGRAMS=(git:git zstd:zstd xz:xz-utils bzip2:bzip2 xdelta3:xdelta3 bsdiff:bsdiff skopeo:skopeo
  debootstrap:debootstrap busybox:busybox-static dockerd:docker.io docker-compose:docker-compose
  docker-registry:docker-registry openssl:openssl ssh-keygen:openssh-client)

missing_pkgs=()
for pair in "${PROGRAMS[@]}"; do
  prog=${pair%%:*}; pkg=${pair##*:}
  if ! command -v "$prog" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$prog" ]; then missing_pkgs+=("$pkg"); fi
done
# busybox must be the static build (it is copied into images)
if command -v busybox >/dev/null 2>&1 && ! [ -x /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then
  missing_pkgs+=(busybox-static)
fi

is_debian_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

if [ ${#missing_pkgs[@]} -gt 0 ]; then
  if is_debian_root; then
    log "installing: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
  else
    log "missing programs; install these packages (Debian/Ubuntu names): ${missing_pkgs[*]}"
  fi
fi

# docker-registry (distribution 2.8) is only for tests, which start their own on a free port of
# 127.0.0.1: keep the package's system service (:5000 on every interface) stopped and disabled.
if is_debian_root && dpkg -s docker-registry >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  elif [ ! -d /run/systemd/system ] && [ -f /var/run/docker-registry.pid ]; then
    /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  fi
fi

# Node dependencies: npm ci when the lock file changed since the last install.
stamp=node_modules/.dockpack-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing node dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

log "building dist/"
npm run --silent build   # tsc (library, dist/index.js) + the bundled command (dist/bin/dockpack.js)

# Docker Engine: start dockerd when none answers.
engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if [ -z "${DOCKER_HOST:-}" ] && ! engine_up; then
  dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
  if [ "$(id -u)" = 0 ] && [ -x "$dockerd_bin" ]; then
    log "starting dockerd (log: /var/log/dockpack-dockerd.log)"
    # 256 networks of /24 instead of the default ~31 /16 and /20 pools: the test suite runs several
    # compose projects at once, each with its own networks, and the defaults run out.
    setsid nohup "$dockerd_bin" --default-address-pool base=10.213.0.0/16,size=24 \
      >/var/log/dockpack-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do engine_up && break; sleep 1; done
    engine_up || { log "dockerd did not answer within 60 s; see /var/log/dockpack-dockerd.log"; tail -20 /var/log/dockpack-dockerd.log >&2 || true; }
  else
    log "no Docker Engine answers: start one (e.g. 'sudo systemctl start docker' or 'sudo dockerd &')"
  fi
fi
if engine_up; then log "Docker Engine $(docker version --format '{{.Server.Version}}') answers"; fi
