-- Where a job came from: the finished job whose Again, Vary or Extend button started it, and
-- which of the three (shown on its card and in /jobs). Both NULL for a job of its own.
ALTER TABLE jobs ADD COLUMN parent_id INTEGER;
ALTER TABLE jobs ADD COLUMN origin TEXT CHECK (origin IN ('again', 'vary', 'extend'));
