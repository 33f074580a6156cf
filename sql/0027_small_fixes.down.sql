-- Back to 0017's ccvec.load_errors (no rows for a run that does not exist) and its comment.

CREATE OR REPLACE FUNCTION ccvec.load_errors(p_run bigint)
RETURNS TABLE (run_id bigint, stage text, source text, reason text)
LANGUAGE sql STABLE AS $$
    SELECT e.run_id, e.stage, e.source, e.reason FROM ccvec.load_error e WHERE e.run_id = p_run ORDER BY e.id
$$;
COMMENT ON FUNCTION ccvec.load_errors(bigint) IS
    'The inputs load run p_run could not load, in the order they failed, with the stage and reason: `ccvec load-errors`.';

-- Back to 0020's ccvec.ab_outcome (clusters from ccvec.cluster_mate) and its comment.
CREATE OR REPLACE VIEW ccvec.ab_outcome AS
SELECT s.experiment, s.session, s.query, s.rank, s.shown, s.original, s.arm, s.substituted,
       EXISTS (SELECT 1 FROM ccvec.ab_event c
               WHERE c.experiment = s.experiment AND c.event_type = 'click' AND c.session = s.session
                 AND c.query = s.query AND c.result_uuid = s.shown) AS clicked,
       m.cluster
FROM ccvec.ab_served s
JOIN ccvec.experiment e ON e.name = s.experiment
LEFT JOIN ccvec.cluster_mate m ON m.identifier = s.original AND m.level = e.cluster_level;
COMMENT ON VIEW ccvec.ab_outcome IS
    'One row per served position with whether its shown image was clicked in that session and query, and the original''s cluster at the experiment''s level: the unit of analysis.';

-- 0017's ccvec.matview_populated, back with its comment.
CREATE OR REPLACE FUNCTION ccvec.matview_populated(p_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT ispopulated FROM pg_matviews WHERE schemaname = 'ccvec' AND matviewname = p_name
$$;
COMMENT ON FUNCTION ccvec.matview_populated(text) IS
    'Whether materialized view ccvec.<p_name> has been refreshed (NULL: no such view), so a refresh is CONCURRENTLY once it can be.';

DROP FUNCTION IF EXISTS ccvec.update_catalog(uuid[], jsonb[]);
