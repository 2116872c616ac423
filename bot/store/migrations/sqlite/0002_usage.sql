-- Usage: the options that drive a job's price, typed for reports, and a daily rollup kept by
-- a trigger so reports read a few rows whatever the number of jobs.
ALTER TABLE jobs ADD COLUMN seconds REAL;                       -- video length asked for
ALTER TABLE jobs ADD COLUMN audio INTEGER;                      -- 1 with sound, 0 without
ALTER TABLE jobs ADD COLUMN resolution TEXT;
ALTER TABLE jobs ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;

CREATE TABLE usage_daily (
    guild_id      INTEGER NOT NULL,
    day           TEXT    NOT NULL,     -- UTC date of the request, YYYY-MM-DD
    user_id       INTEGER NOT NULL,
    command       TEXT    NOT NULL,
    simulated     INTEGER NOT NULL,     -- 1 in simulation mode: reported, never budgeted
    jobs          INTEGER NOT NULL DEFAULT 0,
    seconds       REAL    NOT NULL DEFAULT 0,
    cost_usd      REAL    NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    cancellations INTEGER NOT NULL DEFAULT 0,
    unpriced      INTEGER NOT NULL DEFAULT 0,   -- made, but with no known price
    PRIMARY KEY (guild_id, day, command, user_id, simulated)
) WITHOUT ROWID;

CREATE TRIGGER jobs_usage_on_end AFTER UPDATE OF state ON jobs
WHEN NEW.state IN ('delivered', 'failed', 'cancelled', 'timed_out', 'outcome_unknown',
                   'undeliverable')
 AND OLD.state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out', 'outcome_unknown',
                       'undeliverable')
BEGIN
    INSERT INTO usage_daily (guild_id, day, user_id, command, simulated, jobs, seconds,
                             cost_usd, failures, cancellations, unpriced)
    VALUES (
        NEW.guild_id, date(NEW.created_at, 'unixepoch'), NEW.user_id, NEW.command,
        NEW.simulated, 1,
        CASE WHEN NEW.state IN ('delivered', 'undeliverable') THEN COALESCE(NEW.seconds, 0)
             ELSE 0 END,
        CASE WHEN NEW.state IN ('failed', 'cancelled') THEN 0
             ELSE COALESCE(NEW.cost_usd, NEW.estimated_usd, 0) END,
        CASE WHEN NEW.state IN ('failed', 'timed_out', 'outcome_unknown') THEN 1 ELSE 0 END,
        CASE WHEN NEW.state = 'cancelled' THEN 1 ELSE 0 END,
        CASE WHEN NEW.state NOT IN ('failed', 'cancelled')
              AND NEW.cost_usd IS NULL AND NEW.estimated_usd IS NULL THEN 1 ELSE 0 END
    )
    ON CONFLICT (guild_id, day, command, user_id, simulated) DO UPDATE SET
        jobs = jobs + excluded.jobs,
        seconds = seconds + excluded.seconds,
        cost_usd = cost_usd + excluded.cost_usd,
        failures = failures + excluded.failures,
        cancellations = cancellations + excluded.cancellations,
        unpriced = unpriced + excluded.unpriced;
END;

-- Per-guild settings moderators change in Discord; absent keys use the config file's default.
CREATE TABLE guild_settings (
    guild_id INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,          -- JSON
    PRIMARY KEY (guild_id, key)
) WITHOUT ROWID;

CREATE TABLE settings_audit (
    id        INTEGER PRIMARY KEY,
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT    NOT NULL,
    at        REAL    NOT NULL
);
CREATE INDEX settings_audit_by_guild ON settings_audit (guild_id, at);
