#!/usr/bin/env bash
# A private Postfix on 127.0.0.1 for the integration tests (after-queue content filter and milters).
# It never reads or writes /etc/postfix: config, queue, mail and log all live under $PF_DIR.
#
#   postfix.sh install   install the Debian package without a system instance (needs root)
#   postfix.sh start     write the config and start (or restart if the config changed); idempotent
#   postfix.sh stop      stop this instance (its own master PID only)
#   postfix.sh clean     stop and delete $PF_DIR
#   postfix.sh status    exit 0 when this instance runs
#   postfix.sh flush     retry deferred mail now (e.g. after the filter came back)
#   postfix.sh queue     print how many messages sit in the queue
#   postfix.sh env       print paths and ports as shell assignments
#
# Settings (environment):
#   PF_DIR=/tmp/atlas-postfix      instance folder: etc/ spool/ data/ mail/ log/maillog
#   PF_SMTP_PORT=2525              "public" smtpd; the content filter and milters apply here
#   PF_REINJECT_PORT=10026         re-injection smtpd for the filter: no filter, no milters, loopback only
#   PF_CONTENT_FILTER=HOST:PORT    after-queue filter (empty: none); Postfix sends queued mail there
#   PF_MILTERS=inet:HOST:PORT      smtpd_milters on the public port (empty: none)
#   PF_MILTER_DEFAULT_ACTION=tempfail   what smtpd does when a milter fails (accept|reject|tempfail)
#   PF_MAILBOXES="bob@test.local"  recipients with their own Maildir mail/<address>/; others: mail/catchall/
#   PF_MAIL_UID / PF_MAIL_GID      owner of delivered files (default 65534; virtual(8) refuses root)
#
# Every domain is delivered locally to Maildirs (nothing leaves the machine), so bounces of rejected mail
# land in mail/catchall/ too. Delivered files start with "Delivered-To: <rcpt>".
set -euo pipefail

PF_DIR=${PF_DIR:-/tmp/atlas-postfix}
PF_SMTP_PORT=${PF_SMTP_PORT:-2525}
PF_REINJECT_PORT=${PF_REINJECT_PORT:-10026}
PF_CONTENT_FILTER=${PF_CONTENT_FILTER:-}
PF_MILTERS=${PF_MILTERS:-}
PF_MILTER_DEFAULT_ACTION=${PF_MILTER_DEFAULT_ACTION:-tempfail}
PF_MAILBOXES=${PF_MAILBOXES:-}
PF_MAIL_UID=${PF_MAIL_UID:-65534}
PF_MAIL_GID=${PF_MAIL_GID:-65534}

etc=$PF_DIR/etc
spool=$PF_DIR/spool
maillog=$PF_DIR/log/maillog
pidfile=$spool/pid/master.pid

say() { echo "postfix.sh: $*" >&2; }

need_root() { [ "$(id -u)" = 0 ] || { say "$1 needs root (Postfix's master runs as root)"; exit 1; }; }

installed() { command -v postfix >/dev/null 2>&1 && [ -x /usr/lib/postfix/sbin/master ]; }

cmd_install() {
  installed && return 0
  need_root install
  # "No configuration": binaries and users only, no /etc/postfix/main.cf, so no system instance.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string localhost" | debconf-set-selections
  apt-cache policy postfix 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
}

running_pid() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  # the PID file could be stale and the number reused: only a Postfix master counts
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = master ] && echo "$pid"
  return 0
}

# Writes stdin to $1 only when the content differs; sets changed=1 then. The mtime is set a minute back:
# Postfix re-reads a config file it sees as "just written" for ~2 s before trusting it.
changed=0
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 0
  fi
  changed=1
  chmod 0644 "$tmp"
  touch -d "@$(($(date +%s) - 60))" "$tmp"
  mv -f "$tmp" "$1"
}

write_config() {
  mkdir -p "$etc" "$PF_DIR/data" "$PF_DIR/mail" "$PF_DIR/log"
  install -d -o root -g root -m 0755 "$spool"
  chown postfix:postfix "$PF_DIR/data"
  chown "$PF_MAIL_UID:$PF_MAIL_GID" "$PF_DIR/mail"
  touch "$maillog"

  local a
  for a in $PF_MAILBOXES; do printf '%s\t%s/\n' "$a" "$a"; done | write_if_changed "$etc/mailboxes"

  local filter=""
  [ -n "$PF_CONTENT_FILTER" ] && filter="scan:[${PF_CONTENT_FILTER%:*}]:${PF_CONTENT_FILTER##*:}"

  write_if_changed "$etc/main.cf" <<EOF
# written by atlas-email test/integration/postfix.sh for a private test instance
compatibility_level = 3.6
queue_directory = $spool
data_directory = $PF_DIR/data
myhostname = mail.test.local
mydomain = test.local
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# no DNS in tests or CI: bracketed next hops only, no client name lookups
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# no syslog in containers: postlogd writes the log file
maillog_file = $maillog
maillog_file_prefixes = $PF_DIR/log
# every domain is a local virtual mailbox domain: nothing ever leaves the machine
virtual_mailbox_domains = static:all
virtual_mailbox_base = $PF_DIR/mail
virtual_mailbox_maps = texthash:$etc/mailboxes, static:catchall/
virtual_uid_maps = static:$PF_MAIL_UID
virtual_gid_maps = static:$PF_MAIL_GID
virtual_minimum_uid = 1
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
# retry deferred mail quickly (a test brings the filter back within seconds)
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
# the after-queue content filter (FILTER_README, "simple" SMTP-based recipe)
content_filter = $filter
receive_override_options = ${filter:+no_address_mappings}
smtpd_milters = $PF_MILTERS
non_smtpd_milters =
milter_protocol = 6
milter_default_action = $PF_MILTER_DEFAULT_ACTION
milter_connect_timeout = 10s
milter_command_timeout = 10s
milter_content_timeout = 30s
EOF

  # chroot "n" everywhere: a chrooted Postfix needs copies of /etc files inside the spool.
  write_if_changed "$etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_SMTP_PORT inet n  -       n       -       -       smtpd
127.0.0.1:$PF_REINJECT_PORT inet n -    n       -       -       smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_milters=
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
scan      unix  -       -       n       -       10      smtp
  -o smtp_send_xforward_command=yes
  -o disable_mime_output_conversion=yes
  -o smtp_generic_maps=
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# Postfix prints its errors only to a terminal; without one a failure is a bare exit 1, so on failure
# show the log tail (where the reason went).
pf() {
  if ! postfix -c "$etc" "$@" </dev/null >&2; then
    say "postfix -c $etc $* failed; log tail:"
    tail -n 20 "$maillog" >&2 || true
    return 1
  fi
}

wait_listening() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

cmd_stop() {
  local pid
  pid=$(running_pid)
  [ -n "$pid" ] || return 0
  pf stop || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$pid" 2>/dev/null || true
  fi
  say "stopped (pid $pid)"
}

cmd_start() {
  need_root start
  cmd_install
  write_config
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ] && [ "$changed" = 0 ]; then
    say "already running (pid $pid)"
  else
    # A reload is not atomic (old smtpd processes may serve one more session with the old settings),
    # so a changed config means a full restart.
    [ -n "$pid" ] && cmd_stop
    rm -f "$pidfile"
    pf start
  fi
  wait_listening "$PF_SMTP_PORT" 20 || { say "smtpd is not listening on $PF_SMTP_PORT"; tail -n 20 "$maillog" >&2; exit 1; }
  wait_listening "$PF_REINJECT_PORT" 20 || { say "re-injection smtpd is not listening on $PF_REINJECT_PORT"; exit 1; }
  say "running (pid $(running_pid)): smtp 127.0.0.1:$PF_SMTP_PORT, re-injection 127.0.0.1:$PF_REINJECT_PORT, filter ${PF_CONTENT_FILTER:-none}, milters ${PF_MILTERS:-none}"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  clean)
    cmd_stop
    # only ever delete a folder this script created
    if [ -f "$etc/main.cf" ] && grep -q '^# written by atlas-email test/integration/postfix.sh' "$etc/main.cf"; then rm -rf "$PF_DIR"; fi
    ;;
  status)
    pid=$(running_pid)
    if [ -n "$pid" ]; then echo "running $pid"; else echo "stopped"; exit 1; fi
    ;;
  flush) postqueue -c "$etc" -f ;;
  queue) find "$spool/incoming" "$spool/active" "$spool/deferred" "$spool/hold" -type f 2>/dev/null | wc -l ;;
  env)
    printf 'PF_DIR=%q\nPF_ETC=%q\nPF_MAIL=%q\nPF_LOG=%q\nPF_SMTP_PORT=%q\nPF_REINJECT_PORT=%q\n' \
      "$PF_DIR" "$etc" "$PF_DIR/mail" "$maillog" "$PF_SMTP_PORT" "$PF_REINJECT_PORT"
    ;;
  *)
    echo "usage: $0 install|start|stop|clean|status|flush|queue|env" >&2
    exit 2
    ;;
esac
