#!/usr/bin/env bash
# Interop test: Auth0's official Python SDK (auth0-server-python MfaClient)
# against `mfa-conform serve --tls`.
#
#   tests/interop/run.sh            # uses target/debug/mfa-conform
#   MFA_CONFORM_BIN=target/release/mfa-conform tests/interop/run.sh
#
# Env: MFA_CONFORM_BIN (server binary), INTEROP_VENV (default
# target/interop-venv), PYTHON (interpreter for the venv, default python3),
# INTEROP_VERBOSE=1 (log every HTTP request the SDK makes).
# Needs PyPI (or a pip cache) the first time, to fill the venv.
# Exit status: the script's (0 = both flows passed); 2 = setup failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

bin=${MFA_CONFORM_BIN:-target/debug/mfa-conform}
venv=${INTEROP_VENV:-target/interop-venv}
python=${PYTHON:-python3}
run_dir=target/interop-run   # server logs and certificate of the last run

die() { echo "interop: $*" >&2; exit 2; }

[[ -x $bin ]] || die "server binary not found: $bin (run 'cargo build' or set MFA_CONFORM_BIN)"

# --- venv (reused; reinstalled only when requirements.txt changes) -----------
stamp=$venv/.requirements.sha256
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python ]]; then
    echo "interop: creating venv $venv"
    "$python" -m venv "$venv" || die "cannot create venv with $python"
fi
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "interop: installing $here/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$here/requirements.txt" </dev/null || die "pip install failed"
    echo "$want" >"$stamp"
fi

# --- server -----------------------------------------------------------------
rm -rf "$run_dir"
mkdir -p "$run_dir"
cert=$run_dir/server-cert.pem
"$bin" serve --addr 127.0.0.1:0 --tls --tls-cert-out "$cert" \
    >"$run_dir/server.stdout" 2>"$run_dir/server.stderr" </dev/null &
server_pid=$!

stop_server() {
    if kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_server_log() {
    echo "--- server stdout ($run_dir/server.stdout) ---" >&2
    tail -n 20 "$run_dir/server.stdout" >&2 || true
    echo "--- server stderr ($run_dir/server.stderr, last 40 lines) ---" >&2
    tail -n 40 "$run_dir/server.stderr" >&2 || true
}

url=
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
    line=$(grep -m1 -oE 'listening on https://127\.0\.0\.1:[0-9]+' "$run_dir/server.stdout" || true)
    if [[ -n $line ]]; then
        url=${line#listening on }
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        show_server_log
        die "server exited before printing 'listening on https://127.0.0.1:PORT'"
    fi
    sleep 0.1
done
if [[ -z $url ]]; then
    show_server_log
    die "no 'listening on https://127.0.0.1:PORT' line from the server within 20s"
fi
[[ -s $cert ]] || { show_server_log; die "server did not write its certificate to $cert"; }
echo "interop: server pid $server_pid at $url"

# --- the SDK script -----------------------------------------------------------
verbose=()
[[ ${INTEROP_VERBOSE:-} == 1 ]] && verbose=(--verbose)
rc=0
NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
    "$venv/bin/python" "$here/sdk_mfa.py" --base-url "$url" --cacert "$cert" \
    ${verbose[@]+"${verbose[@]}"} </dev/null || rc=$?
if ((rc != 0)); then
    show_server_log
fi
exit "$rc"
