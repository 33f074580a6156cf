-- Small fixes (issue "small bugs"): each section says what it replaces; the down file restores it.

-- ccvec.load_errors returned no rows for a load run that does not exist, so `ccvec errors --run 99`
-- said "no load errors". Now it raises VC002 naming the run and the newest one.
CREATE OR REPLACE FUNCTION ccvec.load_errors(p_run bigint)
RETURNS TABLE (run_id bigint, stage text, source text, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE newest bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ccvec.load_run r WHERE r.id = p_run) THEN
        SELECT max(r.id) INTO newest FROM ccvec.load_run r;
        RAISE EXCEPTION 'load run % does not exist (%)', p_run,
            CASE WHEN newest IS NULL THEN 'nothing has been loaded yet'
                 ELSE format('the newest is run %s', newest) END
            USING ERRCODE = 'VC002';
    END IF;
    RETURN QUERY
        SELECT e.run_id, e.stage, e.source, e.reason FROM ccvec.load_error e WHERE e.run_id = p_run ORDER BY e.id;
END $$;
COMMENT ON FUNCTION ccvec.load_errors(bigint) IS
    'The inputs load run p_run could not load, in the order they failed, with the stage and reason: `ccvec errors --run`. Raises VC002 when there is no such run.';

-- ccvec.ab_outcome read the original's cluster from ccvec.cluster_mate, a materialized view only
-- `ccvec refresh` fills, so `ccvec experiment report` failed until a refresh had run, though its
-- counts need no refresh. It reads the current clusters (ccvec.image_cluster) now.
CREATE OR REPLACE VIEW ccvec.ab_outcome AS
SELECT s.experiment, s.session, s.query, s.rank, s.shown, s.original, s.arm, s.substituted,
       EXISTS (SELECT 1 FROM ccvec.ab_event c
               WHERE c.experiment = s.experiment AND c.event_type = 'click' AND c.session = s.session
                 AND c.query = s.query AND c.result_uuid = s.shown) AS clicked,
       m.cluster
FROM ccvec.ab_served s
JOIN ccvec.experiment e ON e.name = s.experiment
LEFT JOIN ccvec.image_cluster m ON m.identifier = s.original AND m.level = e.cluster_level;
COMMENT ON VIEW ccvec.ab_outcome IS
    'One row per served position with whether its shown image was clicked in that session and query, and the original''s current cluster at the experiment''s level (ccvec.image_cluster: no refresh needed): the unit of analysis.';

-- ccvec.matview_populated (0017) did what ccvec.view_populated (0010) does, but NULL for a view that
-- does not exist; its one caller (ccvec.db.refresh_view) uses view_populated now.
DROP FUNCTION IF EXISTS ccvec.matview_populated(text);
