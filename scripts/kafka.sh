#!/usr/bin/env bash
# A single-node Apache Kafka 4.x broker in KRaft mode (broker and controller in one JVM) on
# loopback, from jars that Maven resolves from Maven Central (scripts/kafka/pom.xml) into
# .cache/maven and .cache/kafka/VERSION/libs. No tarball, no Docker.
#
#   scripts/kafka.sh fetch                 resolve the jars only (idempotent)
#   scripts/kafka.sh start DIR [PORT]      format DIR (first time), start, wait until the broker
#                                          answers; prints the bootstrap address 127.0.0.1:PORT.
#                                          A DIR that already holds a broker restarts it with its
#                                          data and port (for outage tests).
#   scripts/kafka.sh stop DIR [--keep]     stop the broker; delete DIR unless --keep
#
# Environment: KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m), KAFKA_START_TIMEOUT (seconds, 120),
# TICKWATCH_CACHE (default ROOT/.cache). Topics are not auto-created: clients create theirs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cache=${TICKWATCH_CACHE:-$root/.cache}
pom=$here/kafka/pom.xml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
libs=$cache/kafka/$version/libs

die() { echo "kafka.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fetch() {
  [ -f "$libs/.complete" ] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to resolve the Kafka jars"
  command -v java >/dev/null || die "a Java 17+ runtime is needed to run Kafka"
  echo "kafka.sh: resolving Apache Kafka $version jars with Maven into $libs" >&2
  rm -rf "$libs"
  mvn -q -B -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$cache/maven" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2 || die "Maven could not resolve the Kafka jars"
  touch "$libs/.complete"
}

java_cmd() {
  local dir=$1; shift
  local heap
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  exec_java=(java "${heap[@]}" -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$dir"
    -cp "$libs/*" "$@")
}

configure() {
  local dir=$1 port=$2 controller
  controller=$(free_port)
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
  echo "$port" >"$dir/port"
  local cluster
  # a cluster id is base64url of 16 random bytes; one starting with "-" reads as an option to
  # the storage tool (1 start in 64 failed), so draw again, as Kafka's own Uuid.randomUuid does
  cluster=$(python3 -c 'import base64, uuid
while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(text)')
  java_cmd "$dir" kafka.tools.StorageTool format --cluster-id "$cluster" \
    --config "$dir/server.properties"
  "${exec_java[@]}" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; die "formatting the KRaft log directory failed"; }
}

start() {
  local dir=$1 port=${2:-}
  fetch
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "a broker already runs from $dir (pid $(cat "$dir/pid"))"
  fi
  if [ ! -f "$dir/server.properties" ]; then
    configure "$dir" "${port:-$(free_port)}"
  fi
  port=$(cat "$dir/port")
  [ -f "$dir/broker.log" ] && mv "$dir/broker.log" "$dir/broker.log.previous"
  java_cmd "$dir" kafka.Kafka "$dir/server.properties"
  setsid "${exec_java[@]}" >"$dir/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-120}))
  until grep -q "Kafka Server started" "$dir/broker.log" 2>/dev/null \
    && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/stdout.log" "$dir/broker.log" >&2 2>/dev/null || true
      die "the broker exited during start-up (logs in $dir)"
    fi
    if ((SECONDS > deadline)); then
      tail -n 40 "$dir/broker.log" >&2 2>/dev/null || true
      stop "$dir" --keep
      die "the broker did not answer on 127.0.0.1:$port within ${KAFKA_START_TIMEOUT:-120}s (logs in $dir)"
    fi
    sleep 0.2
  done
  echo "127.0.0.1:$port"
}

stop() {
  local dir=$1 keep=${2:-}
  if [ -f "$dir/pid" ]; then
    local pid
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid"
  fi
  [ "$keep" = "--keep" ] || rm -rf "$dir"
}

case "${1:-}" in
  fetch) fetch ;;
  start) [ $# -ge 2 ] || die "usage: $0 start DIR [PORT]"; start "$2" "${3:-}" ;;
  stop) [ $# -ge 2 ] || die "usage: $0 stop DIR [--keep]"; stop "$2" "${3:-}" ;;
  *) die "usage: $0 fetch | start DIR [PORT] | stop DIR [--keep]" ;;
esac
