#!/usr/bin/env bash
# Three-way comparison of locking N devices read from stdin into a local,
# real NanoMDM v0.9.0: mdmctl, the curl loop admins use today (xargs -P8 curl
# with one command UUID per device), and a bare Go client making mdmctl's
# batched requests over keep-alive (the practical limit). Each run is a
# whole process measured with GNU time (wall seconds, peak RSS) against a
# fresh server, so no contender pays for another's queue; each is run R
# times, the contenders interleaved so drift on the machine hits all alike,
# and the median is reported.
#
#   bash bench/run.sh                    # N=10000, CURL_N=2000, BIG=100000, R=3
#   N=2000 CURL_N=200 BIG=0 R=1 bash bench/run.sh
#   STALE=1 CURL_N=0 BIG=0 bash bench/run.sh   # plus 1% stale IDs on PostgreSQL
set -euo pipefail
export LC_ALL=C # a decimal point in EPOCHREALTIME
cd "$(dirname "$0")/.."

N=${N:-10000}
CURL_N=${CURL_N:-2000} # the curl loop takes ~40 ms a device: compared per device
BIG=${BIG:-100000}
R=${R:-3}
KEY=bench-key
work=$(mktemp -d)
nano_pid=
trap 'stop_server; rm -rf "$work"' EXIT

if [ ! -x .bin/nanomdm ]; then
	GOBIN=$PWD/.bin go install github.com/micromdm/nanomdm/cmd/nanomdm@v0.9.0
fi
go build -o "$work/mdmctl" ./cmd/mdmctl
go build -o "$work/bareclient" ./bench/bareclient
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
	-out "$work/ca.pem" -days 1 -subj /CN=bench -addext extendedKeyUsage=clientAuth >/dev/null 2>&1

start_server() {
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	url=http://127.0.0.1:$port
	(cd "$work" && exec "$OLDPWD/.bin/nanomdm" -listen "127.0.0.1:$port" -ca ca.pem -api $KEY -storage inmem -storage-dsn '') >"$work/nanomdm.log" 2>&1 &
	nano_pid=$!
	for _ in $(seq 200); do curl -fs "$url/version" >/dev/null && return; sleep 0.05; done
	echo "nanomdm did not start" >&2; cat "$work/nanomdm.log" >&2; exit 1
}
stop_server() {
	if [ -n "$nano_pid" ]; then
		kill "$nano_pid" 2>/dev/null || true
		wait "$nano_pid" 2>/dev/null || true
	fi
	nano_pid=
}

payload='<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string></dict><key>CommandUUID</key><string>%s</string></dict></plist>'
export KEY payload

# once NAME DEVICES COMMAND: runs COMMAND (it reads $url) once against a
# fresh server and records its wall time (to the millisecond: GNU time's
# 10 ms steps are too coarse for runs of 50 ms) and peak RSS (GNU time).
once() {
	local name=$1 n=$2 cmd=$3 t0 t1 rss
	start_server
	export url
	t0=$EPOCHREALTIME
	/usr/bin/time -f "%M" -o "$work/time" bash -c "$cmd" >/dev/null
	t1=$EPOCHREALTIME
	stop_server
	read -r rss <"$work/time"
	echo "$name $n $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $rss" >>"$work/runs"
}

mdmctl_cmd() { echo "seq -f 'DEV%06g' $1 | XDG_STATE_HOME=$work/state MDMCTL_SERVER=\$url MDMCTL_API_KEY=$KEY $work/mdmctl lock - --yes --no-push --platform ios -o jsonl"; }
bare_cmd() { echo "seq -f 'DEV%06g' $1 | $work/bareclient -server \$url -key $KEY"; }

echo "== NanoMDM v0.9.0 on loopback, $(nproc) cores, median of $R (contenders interleaved)"
for _ in $(seq "$R"); do
	once mdmctl "$N" "$(mdmctl_cmd "$N")"
	once bare-go "$N" "$(bare_cmd "$N")"
	if [ "$BIG" -gt 0 ]; then
		once mdmctl-big "$BIG" "$(mdmctl_cmd "$BIG")"
		once bare-go-big "$BIG" "$(bare_cmd "$BIG")"
	fi
done
if [ "$CURL_N" -gt 0 ]; then
	for _ in $(seq "$R"); do
		once curl-loop "$CURL_N" "seq -f 'DEV%06g' $CURL_N | xargs -P8 -I{} sh -c 'printf \"\$payload\" \$(cat /proc/sys/kernel/random/uuid) | curl -sS -u nanomdm:\$KEY -T - \"\$url/v1/enqueue/{}?nopush=1\" -o /dev/null'"
	done
fi

# Median wall time and RSS per contender.
for name in $(awk '{print $1}' "$work/runs" | uniq | sort -u); do
	walls=$(awk -v n="$name" '$1 == n {print $3}' "$work/runs" | sort -n)
	rsses=$(awk -v n="$name" '$1 == n {print $4}' "$work/runs" | sort -n)
	count=$(echo "$walls" | wc -l)
	mid=$(((count + 1) / 2))
	wall=$(echo "$walls" | sed -n "${mid}p")
	rss=$(echo "$rsses" | sed -n "${mid}p")
	devices=$(awk -v n="$name" '$1 == n {print $2; exit}' "$work/runs")
	printf '%-12s %7d devices %8s s %8s KB   (runs: %s)\n' "$name" "$devices" "$wall" "$rss" "$(echo $walls)"
	echo "$name $devices $wall $rss" >>"$work/results"
done

awk '
	{ n[$1]=$2; wall[$1]=$3; rss[$1]=$4 }
	END {
		print "--"
		if ("curl-loop" in wall) printf "curl loop vs mdmctl, per device: %.2f ms vs %.3f ms: mdmctl %.0fx faster\n", 1000*wall["curl-loop"]/n["curl-loop"], 1000*wall["mdmctl"]/n["mdmctl"], (wall["curl-loop"]/n["curl-loop"])/(wall["mdmctl"]/n["mdmctl"])
		printf "mdmctl / bare Go client at %d devices: %.2fx (medians)\n", n["mdmctl"], wall["mdmctl"]/wall["bare-go"]
		if ("mdmctl-big" in wall) {
			printf "mdmctl / bare Go client at %d devices: %.2fx (medians)\n", n["mdmctl-big"], wall["mdmctl-big"]/wall["bare-go-big"]
			printf "mdmctl peak RSS at %d devices: %.1f MB\n", n["mdmctl-big"], rss["mdmctl-big"]/1024
		}
	}' "$work/results"

# The machine's load drifts over a session more than the difference being
# measured, so also compare each mdmctl run with the bare client's run next
# to it: the median of those paired ratios.
paired() { # paired A B: median of A's i-th wall time over B's
	awk -v a="$1" -v b="$2" '
		$1 == a { wa[++na] = $3; devices = $2 } $1 == b { wb[++nb] = $3 }
		END {
			for (i = 1; i <= na && i <= nb; i++) r[i] = wa[i] / wb[i]
			n = i - 1
			for (i = 2; i <= n; i++) for (j = i; j > 1 && r[j-1] > r[j]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
			if (n > 0) printf "mdmctl / bare Go client at %d devices, run by run: median %.2fx, middle half %.2fx to %.2fx\n", devices, r[int((n + 1) / 2)], r[int(n / 4) + 1], r[int(3 * n / 4)]
		}' "$work/runs"
}
paired mdmctl bare-go
if [ "$BIG" -gt 0 ]; then paired mdmctl-big bare-go-big; fi

# STALE=1: also 1% stale IDs against NanoMDM on PostgreSQL (bench/stale).
if [ "${STALE:-0}" = 1 ]; then
	go run ./bench/stale -n "$N" -r "$R"
fi
