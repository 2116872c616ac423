-- The operator's open jobs, by when they were asked for: what the account caps reserve, read
-- at every admission on the operator's key. ``jobs_open`` leads with the guild, so the
-- account's sums read all of it; on PostgreSQL through a bitmap, which steps over every dead
-- version of a job that was open (four or five a job until vacuum), where an index scan on
-- this one skips them once seen.
CREATE INDEX jobs_operators_open ON jobs (created_at)
    WHERE state IN ('accepted', 'submitting', 'queued', 'running', 'fetched', 'delivering')
      AND simulated = 0 AND runcomfy_key IS NULL;

-- The account's sums (``bot.store.allowance.ACCOUNT_SQL``, word for word: a test holds them
-- alike) read after the account's lock ($5) is taken, in the one statement that writes a job
-- down on the operator's key. VOLATILE: each query in it sees what was committed when it
-- starts, so the sums hold every job committed before the lock was given. An admission holds
-- the lock for that statement and its commit, not for a round trip more. PL/pgSQL keeps its
-- queries' plans for the session (a SQL function plans them at every call).
CREATE FUNCTION account_spent_locked(TEXT, TEXT, DOUBLE PRECISION, DOUBLE PRECISION, BIGINT)
    RETURNS TABLE (today DOUBLE PRECISION, month DOUBLE PRECISION)
    LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock($5);
    RETURN QUERY
    SELECT made.today + held.today AS today, made.month + held.month AS month
    FROM (SELECT COALESCE(SUM(CASE WHEN day >= $1 THEN cost_usd ELSE 0 END), 0) AS today,
                 COALESCE(SUM(cost_usd), 0) AS month
          FROM account_daily WHERE day >= $2) AS made,
         (SELECT COALESCE(SUM(CASE WHEN created_at >= $3
                                   THEN COALESCE(cost_usd, estimated_usd, 0) ELSE 0 END), 0)
                 AS today,
                 COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0)), 0) AS month
          FROM jobs
            WHERE state IN ('accepted', 'submitting', 'queued', 'running', 'fetched', 'delivering') AND created_at >= $4 AND simulated = 0
              AND runcomfy_key IS NULL) AS held;
END
$$;
