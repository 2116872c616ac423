-- A card is recorded as being sent before it is sent, so that after a crash the bot looks
-- for it instead of posting a second one.
ALTER TABLE jobs ADD COLUMN card_sending_at DOUBLE PRECISION;

-- A moderator's /retry of a job whose outcome is unknown starts one new job, never two.
ALTER TABLE jobs ADD COLUMN retry_of BIGINT;
CREATE UNIQUE INDEX jobs_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;
