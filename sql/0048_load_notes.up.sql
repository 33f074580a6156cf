-- A load records notes beside its failures: rows stored with something changed (stage 'warning')
-- and a folder's files that are not images by their name (stage 'skipped'). Notes are recorded
-- first, so `ccvec errors` showed up to 50 skipped files and hid the failure behind them, and its
-- default run was the newest with any row, which after a clean rerun is a run of notes only.
-- Failures now come first within a run, and the default run is the newest with a failure.

CREATE OR REPLACE FUNCTION ccvec.latest_load_error_run() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT max(run_id) FROM ccvec.load_error WHERE stage NOT IN ('warning', 'skipped')),
        (SELECT max(run_id) FROM ccvec.load_error))
$$;
COMMENT ON FUNCTION ccvec.latest_load_error_run() IS
    'The newest load run that recorded a failure, else the newest that recorded anything (notes: rows stored changed, files skipped), NULL when none did: what `ccvec errors` shows by default.';

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
        SELECT e.run_id, e.stage, e.source, e.reason FROM ccvec.load_error e WHERE e.run_id = p_run
        ORDER BY e.stage IN ('warning', 'skipped'), e.id;
END $$;
COMMENT ON FUNCTION ccvec.load_errors(bigint) IS
    'The inputs load run p_run could not load, in the order they failed, with the stage and reason; then its notes (stage warning: stored with something changed; skipped: not an image by its name). Raises VC002 for a run that does not exist. `ccvec errors`.';

-- The report's errors page in the same order as `ccvec errors` (it sorted by source, so a
-- counted row of skipped files came before the files it follows).
-- Inputs of the given sources that failed: the errors of each source's latest load run.
CREATE OR REPLACE FUNCTION ccvec.report_errors(p_sources text[])
RETURNS TABLE (source text, stage text, reason text, run_id bigint)
LANGUAGE sql STABLE AS $$
    WITH latest AS (
        SELECT max(r.id) AS id FROM ccvec.load_run r WHERE r.source = ANY (p_sources) GROUP BY r.source
    )
    SELECT e.source, e.stage, e.reason, e.run_id
    FROM ccvec.load_error e JOIN latest l ON l.id = e.run_id
    ORDER BY e.stage IN ('warning', 'skipped'), e.id
$$;
COMMENT ON FUNCTION ccvec.report_errors(text[]) IS
    'Load errors of the latest load run of each of p_sources, failures first, then the notes (warning, skipped) in the order ccvec.load_errors gives them: the inputs that currently fail, then those noted.';
