-- IMAP backfill: where each account's folder sweep stands, and what happened to every message it scanned.
-- IF NOT EXISTS: the backfill command may create these tables itself before the migration runner has run.

-- One row per account and folder. uid_validity is kept as text: IMAP allows 32-bit unsigned values and
-- the client reports them as bigint. last_uid is the highest UID whose actions are applied.
CREATE TABLE IF NOT EXISTS backfill_checkpoints (
  account      TEXT    NOT NULL,
  folder       TEXT    NOT NULL,
  uid_validity TEXT    NOT NULL,
  last_uid     INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (account, folder)
);

-- One row per scanned message. A batch is written as 'pending' before its IMAP actions run and turns
-- 'done' together with the checkpoint, so a run killed in between re-applies the same decisions
-- (moves and keywords are idempotent) instead of scanning and counting the messages again.
CREATE TABLE IF NOT EXISTS backfill_messages (
  account      TEXT    NOT NULL,
  folder       TEXT    NOT NULL,
  uid_validity TEXT    NOT NULL,
  uid          INTEGER NOT NULL,
  message_id   TEXT,
  verdict      TEXT    NOT NULL,
  score        REAL,
  spam         INTEGER NOT NULL,
  outcome      TEXT    NOT NULL,
  state        TEXT    NOT NULL CHECK (state IN ('pending', 'done')),
  scanned_at   INTEGER NOT NULL,
  PRIMARY KEY (account, folder, uid_validity, uid)
);

CREATE INDEX IF NOT EXISTS backfill_messages_pending ON backfill_messages (account, folder, state) WHERE state = 'pending';
