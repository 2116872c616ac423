-- A card is recorded as being sent before it is sent, so that after a crash the bot looks
-- for it instead of posting a second one.
ALTER TABLE jobs ADD COLUMN card_sending_at REAL;

-- The daily rollup is kept by the store, in the same transaction as each job's last move, on
-- SQLite as on PostgreSQL.
DROP TRIGGER jobs_usage_on_end;

-- A moderator's /retry of a job whose outcome is unknown starts one new job, never two.
ALTER TABLE jobs ADD COLUMN retry_of INTEGER;
CREATE UNIQUE INDEX jobs_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;
