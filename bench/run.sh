#!/usr/bin/env bash
# Three-way comparison of locking N devices read from stdin into a local,
# real NanoMDM v0.9.0: mdmctl, the curl loop admins use today (xargs -P8 curl
# with one command UUID per device), and a bare Go client making mdmctl's
# batched requests over keep-alive (the practical limit). Each is measured as
# a whole process: wall time and peak RSS (GNU time).
#
#   bash bench/run.sh            # 10,000 devices, plus 100,000 for memory
#   N=2000 BIG=0 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
BIG=${BIG:-100000}
CURL_N=${CURL_N:-$N} # the curl loop is slow: CURL_N=0 skips it
KEY=bench-key
work=$(mktemp -d)
trap 'kill "${nano_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# The real server, installed like the tests install it.
if [ ! -x .bin/nanomdm ]; then
	GOBIN=$PWD/.bin go install github.com/micromdm/nanomdm/cmd/nanomdm@v0.9.0
fi
go build -o "$work/mdmctl" ./cmd/mdmctl
go build -o "$work/bareclient" ./bench/bareclient
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
	-out "$work/ca.pem" -days 1 -subj /CN=bench -addext extendedKeyUsage=clientAuth >/dev/null 2>&1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
(cd "$work" && exec "$OLDPWD/.bin/nanomdm" -listen 127.0.0.1:$port -ca ca.pem -api $KEY -storage inmem -storage-dsn '') >"$work/nanomdm.log" 2>&1 &
nano_pid=$!
for _ in $(seq 100); do curl -fs "$url/version" >/dev/null && break; sleep 0.1; done

# measure NAME COMMAND: prints "NAME wall_seconds peak_rss_kb"
measure() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$work/time" bash -c "$*" >/dev/null
	read -r wall rss <"$work/time"
	printf '%-12s %8s s %8s KB\n' "$name" "$wall" "$rss"
	echo "$name $wall $rss" >>"$work/results"
}

payload='<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string></dict><key>CommandUUID</key><string>%s</string></dict></plist>'
export url KEY payload

echo "== $N devices into NanoMDM v0.9.0 at $url ($(nproc) cores)"
measure mdmctl "seq -f 'DEV%05g' $N | MDMCTL_SERVER=$url MDMCTL_API_KEY=$KEY $work/mdmctl lock - --yes --no-push --platform ios -o jsonl"
measure bare-go "seq -f 'BARE%05g' $N | $work/bareclient -server $url -key $KEY"
[ "$CURL_N" -gt 0 ] && measure curl-loop "seq -f 'CURL%05g' $CURL_N | xargs -P8 -I{} sh -c 'printf \"\$payload\" \$(cat /proc/sys/kernel/random/uuid) | curl -sS -u nanomdm:\$KEY -T - \"\$url/v1/enqueue/{}?nopush=1\" -o /dev/null'"

if [ "$BIG" -gt 0 ]; then
	echo "== $BIG devices (memory)"
	measure mdmctl-big "seq -f 'BIG%06g' $BIG | MDMCTL_SERVER=$url MDMCTL_API_KEY=$KEY $work/mdmctl lock - --yes --no-push --platform ios -o jsonl"
fi

awk -v n="$N" -v cn="$CURL_N" '
	{ wall[$1]=$2; rss[$1]=$3 }
	END {
		if ("curl-loop" in wall) printf "curl-loop / mdmctl: %.1fx slower (per device: %.3f ms vs %.4f ms)\n", (wall["curl-loop"]/cn)/(wall["mdmctl"]/n), 1000*wall["curl-loop"]/cn, 1000*wall["mdmctl"]/n
		printf "mdmctl / bare-go:   %.2fx\n", wall["mdmctl"]/wall["bare-go"]
		if ("mdmctl-big" in rss) printf "mdmctl peak RSS at big run: %.1f MB\n", rss["mdmctl-big"]/1024
	}' "$work/results"
