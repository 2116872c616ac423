-- The operator's open jobs, by when they were asked for: what the account caps reserve, read
-- at every admission on the operator's key. ``jobs_open`` leads with the guild, so the
-- account's sums read all of it; on PostgreSQL through a bitmap, which steps over every dead
-- version of a job that was open (four or five a job until vacuum), where an index scan on
-- this one skips them once seen.
CREATE INDEX jobs_operators_open ON jobs (created_at)
    WHERE state IN ('accepted', 'submitting', 'queued', 'running', 'fetched', 'delivering')
      AND simulated = 0 AND runcomfy_key IS NULL;
