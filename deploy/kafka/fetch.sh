#!/usr/bin/env bash
# Fetch the Apache Kafka broker jars listed by pom.xml with Maven and print the directory holding them.
# Usage: deploy/kafka/fetch.sh [LIBS_DIR]
#   LIBS_DIR defaults to $BALANCE_KAFKA_LIBS, else ~/.cache/balance-worker/kafka/<kafka.version>/libs.
# Maven runs only when LIBS_DIR lacks a marker matching this pom.xml; ~/.m2 caches the downloads.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
libs="${1:-${BALANCE_KAFKA_LIBS:-$HOME/.cache/balance-worker/kafka/$version/libs}}"
marker="$libs/.fetched"
stamp="kafka $version pom $(sha256sum "$pom" | cut -c1-16)"

mkdir -p "$libs"
exec 9>"$libs/.lock"
flock 9  # concurrent callers wait for one fetch
if [[ "$(cat "$marker" 2>/dev/null)" != "$stamp" ]]; then
  rm -f "$marker" "$libs"/*.jar  # never mix jars of two versions on one classpath
  # Maven 3.8's -q still prints stray ANSI resets: keep its output for failures only.
  if ! out="$(mvn -q -B -f "$pom" dependency:copy-dependencies -Dkafka.libs="$libs" 2>&1)"; then
    printf '%s\n' "$out" >&2
    exit 1
  fi
  ls "$libs"/kafka_2.13-"$version".jar >/dev/null
  echo "$stamp" >"$marker"
fi
echo "$libs"
