-- Back to 0017's latest_load_error_run and 0027's load_errors.

CREATE OR REPLACE FUNCTION ccvec.latest_load_error_run() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT max(run_id) FROM ccvec.load_error
$$;
COMMENT ON FUNCTION ccvec.latest_load_error_run() IS
    'The newest load run that recorded errors (NULL when none did): what `ccvec errors` shows by default.';

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

-- Inputs of the given sources that failed: the errors of each source's latest load run.
CREATE OR REPLACE FUNCTION ccvec.report_errors(p_sources text[])
RETURNS TABLE (source text, stage text, reason text, run_id bigint)
LANGUAGE sql STABLE AS $$
    WITH latest AS (
        SELECT max(r.id) AS id FROM ccvec.load_run r WHERE r.source = ANY (p_sources) GROUP BY r.source
    )
    SELECT e.source, e.stage, e.reason, e.run_id
    FROM ccvec.load_error e JOIN latest l ON l.id = e.run_id
    ORDER BY e.source, e.id
$$;
COMMENT ON FUNCTION ccvec.report_errors(text[]) IS
    'Load errors of the latest load run of each of p_sources: the inputs that currently fail.';
