# Shared by the etcd benchmark scripts: a throw-away etcd on free loopback ports, and helpers.
# Sourcing sets WORK (a temporary directory, removed on exit), PIDS (killed on exit) and ETCD_PORT.
command -v etcd >/dev/null || { echo "error: etcd not found; apt-get install etcd-server" >&2; exit 1; }
WORK="$(mktemp -d /tmp/steady-etcd-bench.XXXXXX)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }
wait_for() { # wait_for SECONDS COMMAND...: polls every 20 ms
    local deadline; deadline=$(echo "$(now) + $1" | bc); shift
    until "$@"; do
        if (( $(echo "$(now) > $deadline" | bc) )); then echo "error: timed out waiting for: $*" >&2; exit 1; fi
        sleep 0.02
    done
}
ETCD_PORT=$(free_port); ETCD_PEER=$(free_port)
etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" \
    --log-level error --logger zap >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ETCD_PORT" 2>/dev/null
