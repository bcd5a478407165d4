DROP INDEX IF EXISTS backfill_messages_pending;
DROP TABLE IF EXISTS backfill_messages;
DROP TABLE IF EXISTS backfill_checkpoints;
