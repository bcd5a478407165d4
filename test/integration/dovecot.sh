#!/usr/bin/env bash
# A private Dovecot IMAP server on 127.0.0.1 for the backfill tests and bench.
# Nothing in /etc/dovecot is read or changed: config, users, mail, state and log live in $DC_DIR.
#
#   dovecot.sh start          write the config and start (or reload when already running)
#   dovecot.sh stop           stop this instance (the PID in its own master.pid, nothing else)
#   dovecot.sh clean          stop, then remove $DC_DIR
#   dovecot.sh kick USER      drop USER's open IMAP connections (tests of reconnects)
#   dovecot.sh maildir USER FOLDER   print the Maildir++ path of FOLDER (created when missing)
#
# Environment: DC_DIR (default /tmp/atlas-dovecot), DC_PORT (default 15143),
#              DC_USERS "user:password ..." (default "test:secret"),
#              DC_MAIL_UID / DC_MAIL_GID owner of the mail files (not root; default 65534),
#              DC_MAIL_FSYNC Dovecot's mail_fsync (default optimized),
#              DC_TLS_CERT + DC_TLS_KEY (PEM files) + DC_IMAPS_PORT: TLS on, STARTTLS offered on DC_PORT
#              and implicit TLS on DC_IMAPS_PORT (default: no TLS at all).
set -euo pipefail

DC_DIR=${DC_DIR:-/tmp/atlas-dovecot}
DC_PORT=${DC_PORT:-15143}
DC_USERS=${DC_USERS:-test:secret}
DC_MAIL_UID=${DC_MAIL_UID:-65534}
DC_MAIL_GID=${DC_MAIL_GID:-65534}
conf=$DC_DIR/etc/dovecot.conf
pidfile=$DC_DIR/run/master.pid
logfile=$DC_DIR/log/dovecot.log

say() { echo "dovecot.sh: $*" >&2; }

running_pid() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(tr -dc '0-9' <"$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dovecot ]; then echo "$pid"; fi
}

write_files() {
  mkdir -p "$DC_DIR"/{etc,run,state,mail,log}
  chmod 0755 "$DC_DIR" "$DC_DIR/run"
  touch "$logfile"
  local users=$DC_DIR/etc/users entry name
  : >"$users.new"
  for entry in $DC_USERS; do
    name=${entry%%:*}
    printf '%s:{PLAIN}%s::::::\n' "$name" "${entry#*:}" >>"$users.new"
    install -d -o "$DC_MAIL_UID" -g "$DC_MAIL_GID" -m 0700 "$DC_DIR/mail/$name"
  done
  # Dovecot's auth process runs as the "dovecot" user, not root: it needs group read access.
  chown root:dovecot "$users.new"
  chmod 0640 "$users.new"
  mv -f "$users.new" "$users"

  local ssl_conf='ssl = no' imaps_port=0
  if [ -n "${DC_TLS_CERT:-}" ]; then
    ssl_conf="ssl = yes
ssl_cert = <$DC_TLS_CERT
ssl_key = <$DC_TLS_KEY"
    imaps_port=${DC_IMAPS_PORT:?DC_IMAPS_PORT is needed with DC_TLS_CERT}
  fi
  cat >"$conf" <<EOF
# atlas-email test instance (test/integration/dovecot.sh)
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
instance_name = atlas-dovecot-$DC_PORT
protocols = imap
listen = 127.0.0.1
$ssl_conf
disable_plaintext_auth = no
auth_mechanisms = plain login
# the wrong-password test must not slow the next test's login
auth_failure_delay = 0
log_path = $logfile
info_log_path = $logfile
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
# DC_MAIL_FSYNC=never for throwaway bench mail; Dovecot's default (optimized) otherwise
mail_fsync = ${DC_MAIL_FSYNC:-optimized}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $users
}
userdb {
  driver = static
  # allow_all_users: doveadm (warm-ups, kick) looks users up without a password
  args = uid=$DC_MAIL_UID gid=$DC_MAIL_GID home=$DC_DIR/mail/%u allow_all_users=yes
}
namespace inbox {
  inbox = yes
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
  }
}
# Without this, one failed login makes every later login from 127.0.0.1 wait seconds (auth penalty).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
shutdown_clients = yes
EOF
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$DC_PORT") 2>/dev/null; }

start() {
  command -v dovecot >/dev/null || { say "dovecot is not installed (bash .ci/system-deps installs dovecot-imapd)"; exit 1; }
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    write_files
    doveadm -c "$conf" reload
  else
    # Sockets left by an earlier run (a stale anvil-auth-penalty above all) stall auth for seconds.
    rm -rf "$DC_DIR/run"
    write_files
    doveconf -c "$conf" -n >/dev/null
    # The master keeps its stderr open for good: detach it, or a caller reading our output hangs.
    dovecot -c "$conf" </dev/null >>"$logfile" 2>&1 || { tail -20 "$logfile" >&2; exit 1; }
  fi
  local i
  for ((i = 0; i < 200; i++)); do
    if port_open && [ -n "$(running_pid)" ]; then
      say "listening on 127.0.0.1:$DC_PORT (pid $(running_pid)), mail in $DC_DIR/mail"
      return 0
    fi
    sleep 0.1
  done
  say "not listening after 20 s"
  tail -20 "$logfile" >&2
  exit 1
}

stop() {
  local pid i
  pid=$(running_pid)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

maildir() { # user folder
  local dir=$DC_DIR/mail/$1/Maildir
  [ "$2" = INBOX ] || dir=$dir/.${2//\//.}
  install -d -o "$DC_MAIL_UID" -g "$DC_MAIL_GID" -m 0700 "$DC_DIR/mail/$1" "$DC_DIR/mail/$1/Maildir" "$dir" "$dir/cur" "$dir/new" "$dir/tmp"
  echo "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  clean)
    stop
    if [ -f "$conf" ] && grep -q '^# atlas-email test instance' "$conf"; then rm -rf "$DC_DIR"; fi
    ;;
  kick) doveadm -c "$conf" kick "$2" >/dev/null ;;
  maildir) maildir "$2" "$3" ;;
  *)
    echo "usage: $0 start|stop|clean|kick USER|maildir USER FOLDER" >&2
    exit 64
    ;;
esac
