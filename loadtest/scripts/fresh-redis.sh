# Sourced by floor-steps.sh and floor-hop.sh: one fresh redis-server at a time, with the
# benchmarks' settings (AOF on, appendfsync everysec) in a temp dir, stopped and removed
# by `stop_redis` and on exit. `start_redis PORT` sets `$redis` to its pid.
redis_dir=""
redis=""
start_redis() {
    redis_dir=$(mktemp -d)
    redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync everysec --dir "$redis_dir" >"$redis_dir/log" 2>&1 &
    redis=$!
    for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
stop_redis() {
    [ -n "$redis" ] && kill "$redis" 2>/dev/null && wait "$redis" 2>/dev/null || true
    [ -n "$redis_dir" ] && rm -rf "$redis_dir"
    redis="" redis_dir=""
}
trap stop_redis EXIT
