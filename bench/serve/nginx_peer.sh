#!/usr/bin/env bash
# The HTTP floor of `myelin bench serve`: Debian's nginx (nginx-light)
# answering every request, POST included, with 200 "ok" and no work behind it.
#
#   bench/serve/nginx_peer.sh start DIR PORT   # config, pid, logs, temp in DIR
#   bench/serve/nginx_peer.sh stop  DIR
#
# `start` writes DIR/nginx.conf (one worker, access_log off, listen on
# 127.0.0.1:PORT only, keep-alive for up to 1,000,000 requests a connection),
# starts a private nginx master as a daemon, and returns once the port
# answers (at most 5 s), or fails with nginx's error message. Nothing outside DIR
# is read or written (`-e` moves the early error log there too), so several
# instances can run side by side and the system nginx is never touched.
# Running as root, the worker stays root: DIR may be a mode-700 mktemp dir.
# `stop` asks the master to exit (QUIT), waits up to 5 s, then kills it.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "$0: nginx not found (Debian package nginx-light)" >&2; exit 1; }

alive() { [ -s "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; }

start() {
  local port=$1
  if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "$0: bad port '$port'" >&2
    exit 2
  fi
  if alive; then echo "$0: nginx already running in $dir" >&2; exit 1; fi
  mkdir -p "$dir/logs" "$dir/tmp"
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat >"$dir/nginx.conf" <<EOF
# Written by bench/serve/nginx_peer.sh: the floor peer of myelin bench serve.
$user_line
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 16m;
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$port;
    default_type text/plain;
    # return answers any method before the static module's 405 for POST
    location / { return 200 "ok"; }
  }
}
EOF
  # nginx names what is wrong on stderr itself (a used port takes it 2.5 s of retries)
  "$nginx" -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" -t || exit 1
  "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" || exit 1
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "nginx $("$nginx" -v 2>&1 | sed 's|.*/||') on 127.0.0.1:$port, pid $(cat "$dir/nginx.pid")"
      return 0
    fi
    sleep 0.1
  done
  echo "$0: nginx did not answer on 127.0.0.1:$port within 5 s" >&2
  cat "$dir/logs/error.log" >&2
  exit 1
}

stop() {
  alive || { echo "$0: no nginx running in $dir" >&2; return 0; }
  local pid
  pid=$(cat "$dir/nginx.pid")
  kill -QUIT "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

case $cmd in
  start) [ $# -eq 3 ] || usage; start "$3" ;;
  stop) stop ;;
  *) usage ;;
esac
