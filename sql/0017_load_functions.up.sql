-- The statements ccvec/load.py, load_parquet.py, abtest.py, models/registry.py, db.py and the
-- `ccvec load-errors` command ran as query text, as functions Python calls (issue 16).

-- ---------------------------------------------------------------- load runs and their errors

CREATE FUNCTION ccvec.load_run_start(p_source text, p_model text) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.load_run (source, model) VALUES (p_source, p_model) RETURNING id
$$;
COMMENT ON FUNCTION ccvec.load_run_start(text, text) IS
    'Opens a load run (one row of ccvec.load_run) and returns its id, which the load''s rows and errors refer to.';

CREATE FUNCTION ccvec.load_run_add(p_run bigint, p_loaded bigint, p_failed bigint DEFAULT 0) RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.load_run SET loaded = loaded + p_loaded, failed = failed + p_failed WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.load_run_add(bigint, bigint, bigint) IS
    'Adds one committed batch''s inserted and failed rows to the counts of load run p_run, so a killed load still tells what it did; returns nothing.';

CREATE FUNCTION ccvec.load_run_finish(p_run bigint, p_loaded bigint, p_skipped bigint, p_failed bigint)
RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.load_run
    SET finished_at = now(), loaded = coalesce(p_loaded, loaded), skipped = p_skipped,
        failed = coalesce(p_failed, failed)
    WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.load_run_finish(bigint, bigint, bigint, bigint) IS
    'Closes load run p_run with its final counts (a NULL count keeps the one the batches added up); returns nothing. An unfinished run is a load that was killed.';

CREATE FUNCTION ccvec.load_run_index_dropped(p_run bigint) RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.load_run SET index_dropped = true WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.load_run_index_dropped(bigint) IS
    'Records, before the drop, that load run p_run drops its model''s HNSW index for a faster bulk load, so a load killed before the rebuild leaves a trace (ccvec.missing_indexes()); returns nothing.';

CREATE FUNCTION ccvec.add_load_error(p_run bigint, p_source text, p_stage text, p_reason text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.load_error (run_id, source, stage, reason) VALUES (p_run, p_source, p_stage, p_reason)
$$;
COMMENT ON FUNCTION ccvec.add_load_error(bigint, text, text, text) IS
    'Records one input that could not be loaded (p_run NULL: not part of a load run, e.g. an A/B import), with the stage that refused it and why; returns nothing.';

CREATE FUNCTION ccvec.create_error_stage() RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    CREATE TEMP TABLE ccvec_error_stage (source text, stage text, reason text) ON COMMIT DROP;
END $$;
COMMENT ON FUNCTION ccvec.create_error_stage() IS
    'Creates the session''s temporary table ccvec_error_stage (dropped at commit) that a features dataset''s error rows are copied into before ccvec.ingest_load_errors(); returns nothing.';

CREATE FUNCTION ccvec.ingest_load_errors(p_run bigint) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE added integer;
BEGIN
    INSERT INTO ccvec.load_error (run_id, source, stage, reason)
    SELECT DISTINCT p_run, s.source, s.stage, s.reason FROM ccvec_error_stage s
    WHERE NOT EXISTS (SELECT 1 FROM ccvec.load_error e WHERE e.source = s.source
                      AND e.stage = s.stage AND e.reason = s.reason);
    GET DIAGNOSTICS added = ROW_COUNT;
    UPDATE ccvec.load_run SET failed = added WHERE id = p_run;
    RETURN added;
END $$;
COMMENT ON FUNCTION ccvec.ingest_load_errors(bigint) IS
    'Moves the staged error rows (ccvec_error_stage) into ccvec.load_error under run p_run, each (source, stage, reason) once across reruns, and sets the run''s failed count; returns the rows added.';

-- ccvec.embedding_count(text) comes from 0015.

CREATE FUNCTION ccvec.latest_load_error_run() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT max(run_id) FROM ccvec.load_error
$$;
COMMENT ON FUNCTION ccvec.latest_load_error_run() IS
    'The newest load run that recorded errors (NULL when none did): what `ccvec errors` shows by default.';

CREATE FUNCTION ccvec.load_errors(p_run bigint)
RETURNS TABLE (run_id bigint, stage text, source text, reason text)
LANGUAGE sql STABLE AS $$
    SELECT e.run_id, e.stage, e.source, e.reason FROM ccvec.load_error e WHERE e.run_id = p_run ORDER BY e.id
$$;
COMMENT ON FUNCTION ccvec.load_errors(bigint) IS
    'The inputs load run p_run could not load, in the order they failed, with the stage and reason: `ccvec load-errors`.';

-- ---------------------------------------------------------------- models

CREATE FUNCTION ccvec.model_onnx_sha256(p_name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT onnx_sha256 FROM ccvec.model WHERE name = p_name
$$;
COMMENT ON FUNCTION ccvec.model_onnx_sha256(text) IS
    'The sha256 of the ONNX file registered as model p_name (NULL: no such model), so a different file never registers under a used name.';

CREATE FUNCTION ccvec.register_model(p_name text, p_version text, p_weights_sha256 text, p_onnx_sha256 text,
                                     p_dim integer, p_spec jsonb) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.model (name, version, weights_sha256, onnx_sha256, dim, spec)
    VALUES (p_name, p_version, p_weights_sha256, p_onnx_sha256, p_dim, p_spec) ON CONFLICT (name) DO NOTHING
$$;
COMMENT ON FUNCTION ccvec.register_model(text, text, text, text, integer, jsonb) IS
    'Registers model p_name (a name registered already is left as it is); returns nothing.';

CREATE FUNCTION ccvec.model_spec(p_name text) RETURNS TABLE (spec jsonb, onnx_sha256 text)
LANGUAGE sql STABLE AS $$
    SELECT m.spec, m.onnx_sha256 FROM ccvec.model m WHERE m.name = p_name
$$;
COMMENT ON FUNCTION ccvec.model_spec(text) IS
    'The spec and ONNX sha256 of model p_name (no row: not registered): what running the model needs and checks its file against.';

CREATE FUNCTION ccvec.model_list()
RETURNS TABLE (name text, version text, dim integer, onnx_sha256 text, registered_at timestamptz,
               embeddings bigint)
LANGUAGE sql STABLE AS $$
    SELECT m.name, m.version, m.dim, m.onnx_sha256, m.registered_at,
           (SELECT count(*) FROM ccvec.image_embedding e WHERE e.model = m.name)
    FROM ccvec.model m ORDER BY m.name
$$;
COMMENT ON FUNCTION ccvec.model_list() IS
    'Every registered model with its version, dimension, ONNX sha256, registration time and number of embeddings: `ccvec model list`.';

-- ---------------------------------------------------------------- A/B experiments

CREATE FUNCTION ccvec.create_experiment(p_name text, p_salt text, p_treatment_share double precision,
                                        p_substitution_share double precision, p_level text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share, cluster_level)
    VALUES (p_name, p_salt, p_treatment_share, p_substitution_share, p_level)
$$;
COMMENT ON FUNCTION ccvec.create_experiment(text, text, double precision, double precision, text) IS
    'Starts experiment p_name (a unique violation when the name is taken); returns nothing.';

CREATE FUNCTION ccvec.stop_experiment(p_name text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    WITH stopped AS (
        UPDATE ccvec.experiment SET status = 'stopped', ends_at = coalesce(ends_at, now())
        WHERE name = p_name RETURNING 1
    )
    SELECT count(*) > 0 FROM stopped
$$;
COMMENT ON FUNCTION ccvec.stop_experiment(text) IS
    'Stops experiment p_name (its end time kept when set); false when there is no such experiment.';

CREATE FUNCTION ccvec.experiment_exists(p_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM ccvec.experiment WHERE name = p_name)
$$;
COMMENT ON FUNCTION ccvec.experiment_exists(text) IS
    'Whether an experiment named p_name exists, so imports and reports can refuse unknown names clearly.';

CREATE FUNCTION ccvec.add_ab_event(p_experiment text, p_event_type text, p_session text, p_query text,
                                   p_result_uuid uuid, p_result_rank integer, p_occurred_at timestamptz)
RETURNS integer
LANGUAGE sql VOLATILE AS $$
    WITH added AS (
        INSERT INTO ccvec.ab_event (experiment, event_type, session, query, result_uuid, result_rank, occurred_at)
        VALUES (p_experiment, p_event_type, p_session, p_query, p_result_uuid, p_result_rank, p_occurred_at)
        ON CONFLICT ON CONSTRAINT ab_event_once DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM added
$$;
COMMENT ON FUNCTION ccvec.add_ab_event(text, text, text, text, uuid, integer, timestamptz) IS
    'Imports one analytics event; returns 1 when added, 0 when the same event was imported before (re-imports never double-count).';

CREATE FUNCTION ccvec.ab_strata(p_experiment text)
RETURNS TABLE (rank integer, arm text, substituted boolean, impressions bigint, clicks bigint)
LANGUAGE sql STABLE AS $$
    SELECT o.rank, o.arm, o.substituted, count(*), count(*) FILTER (WHERE o.clicked) FROM ccvec.ab_outcome o
    WHERE o.experiment = p_experiment GROUP BY o.rank, o.arm, o.substituted ORDER BY o.rank
$$;
COMMENT ON FUNCTION ccvec.ab_strata(text) IS
    'Impressions and clicks of experiment p_experiment per (rank, arm, substituted): the strata of its Mantel-Haenszel comparison.';

CREATE FUNCTION ccvec.ab_substituted_outcomes(p_experiment text)
RETURNS TABLE (cluster integer, rank integer, clicked boolean)
LANGUAGE sql STABLE AS $$
    SELECT o.cluster, o.rank, o.clicked FROM ccvec.ab_outcome o WHERE o.experiment = p_experiment AND o.substituted
$$;
COMMENT ON FUNCTION ccvec.ab_substituted_outcomes(text) IS
    'Every substituted position of experiment p_experiment with its cluster, rank and whether it was clicked: per-cluster validity of the substitutions.';

CREATE FUNCTION ccvec.ab_alternates_clicked() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.ab_alternate_signal WHERE clicks > 0
$$;
COMMENT ON FUNCTION ccvec.ab_alternates_clicked() IS
    'How many shown alternates were clicked at least once: observed signal for images the catalog rarely shows.';

-- ---------------------------------------------------------------- database helpers

CREATE FUNCTION ccvec.matview_populated(p_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT ispopulated FROM pg_matviews WHERE schemaname = 'ccvec' AND matviewname = p_name
$$;
COMMENT ON FUNCTION ccvec.matview_populated(text) IS
    'Whether materialized view ccvec.<p_name> has been refreshed (NULL: no such view), so a refresh is CONCURRENTLY once it can be.';

CREATE FUNCTION ccvec.ddl_lock(p_lock_timeout text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM pg_advisory_xact_lock(hashtext('ccvec index ddl'));
END $$;
COMMENT ON FUNCTION ccvec.ddl_lock(text) IS
    'For the rest of the transaction: waits at most p_lock_timeout for any lock, and holds the advisory lock that serialises ccvec''s index DDL; returns nothing.';
