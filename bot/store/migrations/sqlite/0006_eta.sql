-- When a job will likely start (while queued) or be ready (while running), unix seconds, as the
-- poller estimates it from what it learned: shown on the card and in /jobs.
ALTER TABLE jobs ADD COLUMN eta_at REAL;
