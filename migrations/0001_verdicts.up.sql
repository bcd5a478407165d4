-- The verdict log: one row per verdict any door answered. Time is milliseconds since the epoch (UTC);
-- recipients and symbols are JSON arrays. The id orders rows written in the same millisecond.
CREATE TABLE verdicts (
  id            INTEGER PRIMARY KEY,
  time          INTEGER NOT NULL,
  message_id    TEXT    NOT NULL DEFAULT '',
  queue_id      TEXT,
  sender        TEXT    NOT NULL DEFAULT '',
  sender_domain TEXT    NOT NULL DEFAULT '',
  recipients    TEXT    NOT NULL DEFAULT '[]',
  subject       TEXT    NOT NULL DEFAULT '',
  relay_ip      TEXT,
  country       TEXT,
  score         REAL    NOT NULL,
  action        TEXT    NOT NULL,
  source        TEXT    NOT NULL,
  symbols       TEXT    NOT NULL DEFAULT '[]',
  elapsed_ms    REAL    NOT NULL
);

-- History pages run newest first by (time, id); the filters narrow by sender domain or action.
CREATE INDEX verdicts_time ON verdicts (time);
CREATE INDEX verdicts_sender_domain ON verdicts (sender_domain, time);
CREATE INDEX verdicts_action ON verdicts (action, time);
