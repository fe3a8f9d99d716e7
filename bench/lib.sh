# bench/lib.sh: what the benchmark scripts share; sourced, not run.

# install_missing NAME PKG...: as root on Debian, apt-get install the
# packages; otherwise say on stderr (as NAME) that they are missing.
install_missing() {
    local name=$1
    shift
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "$name: installing $*" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq "$@" >/dev/null
    else
        echo "$name: missing $* (install them, or run as root on Debian)" >&2
    fi
}

# have_uvloop: $PY runs and imports uvloop. have_uvdev: libuv's headers are
# there (Debian's libuv1-dev).
have_uvloop() { [ -x "$PY" ] && "$PY" -c 'import uvloop' >/dev/null 2>&1; }
have_uvdev() { [ -f /usr/include/uv.h ] || pkg-config --exists libuv 2>/dev/null; }

# ---- processes, ports and CPU time (bench/compare.sh; net.sh has its own
# copies of the first ones, which behave the same) ---------------------------

# alive PID: running (not gone, not a zombie).
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it if it is a child.
stop_pid() {
    local pid=$1 i
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.05; done
        if alive "$pid"; then
            echo "${0##*/}: pid $pid ignored SIGTERM for 5 s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# port_state PORT [STATE]: a TCP socket whose local port is PORT (in STATE,
# as in /proc/net/tcp: 0A is LISTEN) exists.
port_state() {
    local t=(/proc/net/tcp)
    [ -r /proc/net/tcp6 ] && t+=(/proc/net/tcp6)
    awk -v h="$(printf ':%04X' "$1")" -v s="${2:-}" \
        'FNR > 1 && substr($2, length($2) - 4) == h && (s == "" || $4 == s) {f = 1; exit}
         END {exit !f}' "${t[@]}"
}

# listens PID PORT: PID itself holds a socket listening on PORT (not some
# other process that happens to use the port).
listens() {
    local t=(/proc/net/tcp) inos ino f
    [ -r /proc/net/tcp6 ] && t+=(/proc/net/tcp6)
    mapfile -t inos < <(awk -v h="$(printf ':%04X' "$2")" \
        'FNR > 1 && substr($2, length($2) - 4) == h && $4 == "0A" {print $10}' "${t[@]}")
    for ino in "${inos[@]}"; do
        for f in /proc/"$1"/fd/*; do
            [ "$(readlink "$f" 2>/dev/null)" = "socket:[$ino]" ] && return 0
        done
    done
    return 1
}

# cpu_ns PID...: the CPU time of all their threads (sum_exec_runtime), in ns.
cpu_ns() {
    local sum=0 pid f v
    for pid; do
        for f in /proc/"$pid"/task/*/schedstat; do
            read -r v _ 2>/dev/null <"$f" || continue
            sum=$((sum + v))
        done
    done
    echo "$sum"
}

# tcp_rmem_fix NAME BYTES: every new TCP socket's receive buffer fixed at
# BYTES (net.ipv4.tcp_rmem's default, tcp_moderate_rcvbuf=0; needs root),
# the old values kept in tcp_rmem_saved; 1 (and a word on stderr, as NAME)
# if they cannot be set. tcp_rmem_restore NAME puts them back.
tcp_rmem_saved=()
tcp_rmem_fix() {
    local name=$1 bytes=$2 rmem mod min max
    [ ${#tcp_rmem_saved[@]} = 0 ] || return 0
    if ! rmem=$(sysctl -n net.ipv4.tcp_rmem 2>/dev/null) ||
        ! mod=$(sysctl -n net.ipv4.tcp_moderate_rcvbuf 2>/dev/null); then
        echo "$name: cannot read the TCP sysctls: autotuned receive buffers" >&2
        return 1
    fi
    read -r min _ max <<<"$rmem"
    [ "$bytes" -le "$max" ] || max=$bytes
    if sysctl -qw net.ipv4.tcp_moderate_rcvbuf=0 2>/dev/null &&
        sysctl -qw net.ipv4.tcp_rmem="$min $bytes $max" 2>/dev/null; then
        tcp_rmem_saved=("$rmem" "$mod")
        return 0
    fi
    sysctl -qw net.ipv4.tcp_moderate_rcvbuf="$mod" 2>/dev/null || true
    echo "$name: cannot set the TCP sysctls (not root?): autotuned receive buffers" >&2
    return 1
}
tcp_rmem_restore() {
    [ ${#tcp_rmem_saved[@]} -gt 0 ] || return 0
    sysctl -qw net.ipv4.tcp_rmem="${tcp_rmem_saved[0]}" \
        net.ipv4.tcp_moderate_rcvbuf="${tcp_rmem_saved[1]}" >/dev/null ||
        echo "$1: could not restore net.ipv4.tcp_rmem=\"${tcp_rmem_saved[0]}\"" \
            "tcp_moderate_rcvbuf=${tcp_rmem_saved[1]}" >&2
    tcp_rmem_saved=()
}
