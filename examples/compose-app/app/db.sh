#!/bin/sh
# A database-like service for the demo: records are lines in /var/lib/db/<name>/records.log,
# one numbered record per insert, with a running sha256 in /var/lib/db/<name>/records.sha256.
set -eu
DIR=/var/lib/db/${DB_NAME:-demo}
case "${1:-serve}" in
  serve)
    mkdir -p "$DIR/tables"
    [ -f "$DIR/records.log" ] || : > "$DIR/records.log"
    echo "db ready: $(wc -l < "$DIR/records.log") record(s) in $DIR"
    trap 'exit 0' TERM INT
    while :; do sleep 3600 & wait $!; done
    ;;
  insert)
    shift
    n=$(( $(wc -l < "$DIR/records.log") + 1 ))
    printf '%d\t%s\t%s\n' "$n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$DIR/records.log"
    sha256sum "$DIR/records.log" | cut -d' ' -f1 > "$DIR/records.sha256"
    echo "record $n"
    ;;
  count)
    wc -l < "$DIR/records.log"
    ;;
  *)
    echo "usage: db.sh serve|insert TEXT|count" >&2
    exit 2
    ;;
esac
