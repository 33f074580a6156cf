-- A new user's trial of the A/B commands (issue 12's round of trust) found:
-- * a NULL among the results passed to ccvec.substitute failed the whole search page (ab_served's
--   NOT NULL), and any NULL on the page stopped every substitution (`x = ANY(array with NULL)` is
--   NULL, never false): NULL positions now pass through as they came, unlogged;
-- * an experiment could name a cluster level that does not exist and then never substitute;
--   ccvec.create_experiment refuses it (VC001), and an empty name;
-- * "N alternates have clicks" counted every experiment's alternates;
--   ccvec.ab_alternates_clicked takes the experiment now;
-- * imported events that match nothing the experiment served were counted nowhere:
--   ccvec.ab_unmatched_events says how many.

CREATE OR REPLACE FUNCTION ccvec.substitute(p_experiment text, p_session text, p_query text, p_results uuid[])
RETURNS TABLE (rank integer, shown uuid, original uuid, arm text, substituted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    e ccvec.experiment;
    v_arm text;
    on_page uuid[] := array_remove(p_results, NULL);
    mate uuid;
    i integer;
BEGIN
    SELECT * INTO e FROM ccvec.experiment x WHERE x.name = p_experiment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no experiment named %', p_experiment USING ERRCODE = 'VC002';
    END IF;
    IF p_session IS NULL OR p_query IS NULL THEN
        RAISE EXCEPTION 'substitute needs a session and a query (got NULL)' USING ERRCODE = 'VC001';
    END IF;
    v_arm := ccvec.assign_arm(p_experiment, p_session);
    FOR i IN 1 .. coalesce(array_length(p_results, 1), 0) LOOP
        mate := NULL;
        IF p_results[i] IS NOT NULL AND v_arm = 'treatment'
           AND ccvec.unit_hash(e.salt || ':' || p_session || ':' || p_query || ':' || i) < e.substitution_share THEN
            SELECT m.identifier INTO mate
            FROM ccvec.cluster_mate o
            JOIN ccvec.cluster_mate m ON m.level = o.level AND m.cluster = o.cluster
            WHERE o.identifier = p_results[i] AND o.level = e.cluster_level
              AND NOT m.identifier = ANY (on_page)
            ORDER BY m.position
            LIMIT 1;
        END IF;
        IF mate IS NOT NULL THEN
            on_page := on_page || mate;
        END IF;
        IF p_results[i] IS NOT NULL THEN
            INSERT INTO ccvec.ab_served AS a (experiment, session, query, rank, shown, original, arm, substituted)
            VALUES (p_experiment, p_session, p_query, i, coalesce(mate, p_results[i]), p_results[i], v_arm,
                    mate IS NOT NULL)
            ON CONFLICT ON CONSTRAINT ab_served_pkey DO NOTHING;
        END IF;
        rank := i;
        shown := coalesce(mate, p_results[i]);
        original := p_results[i];
        arm := v_arm;
        substituted := mate IS NOT NULL;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION ccvec.substitute(text, text, text, uuid[]) IS
    'The page to show for ordered results p_results: one row per rank from 1 with the shown image, the original, the session''s arm and whether substituted. In treatment, ranks where ccvec.unit_hash(salt:session:query:rank) < substitution_share show the best-placed cluster-mate (at the experiment''s level) not already on the page, when there is one. Logs every row in ccvec.ab_served (the first serving of a rank wins). A NULL in p_results stays NULL at its rank, unlogged, and blocks no substitution. Raises VC002 when there is no experiment by that name, VC001 for a NULL session or query.';

CREATE OR REPLACE FUNCTION ccvec.create_experiment(p_name text, p_salt text, p_treatment_share double precision,
                                                   p_substitution_share double precision, p_level text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_levels text;
BEGIN
    IF p_name IS NULL OR btrim(p_name) = '' THEN
        RAISE EXCEPTION 'an experiment needs a name' USING ERRCODE = 'VC001';
    END IF;
    IF p_treatment_share IS NULL OR NOT p_treatment_share BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'treatment share must be between 0 and 1, not %', p_treatment_share USING ERRCODE = 'VC001';
    END IF;
    IF p_substitution_share IS NULL OR NOT p_substitution_share BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'substitution share must be between 0 and 1, not %', p_substitution_share USING ERRCODE = 'VC001';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ccvec.cluster_run r WHERE r.level = p_level) THEN
        SELECT string_agg(DISTINCT r.level, ', ' ORDER BY r.level) INTO v_levels FROM ccvec.cluster_run r;
        RAISE EXCEPTION 'no clusters at level %: %', quote_literal(p_level),
            CASE WHEN v_levels IS NULL THEN 'run `ccvec cluster` first'
                 ELSE 'the levels are ' || v_levels END
            USING ERRCODE = 'VC001';
    END IF;
    INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share, cluster_level)
    VALUES (p_name, p_salt, p_treatment_share, p_substitution_share, p_level);
END $$;
COMMENT ON FUNCTION ccvec.create_experiment(text, text, double precision, double precision, text) IS
    'Starts experiment p_name (a unique violation when the name is taken); raises VC001 for an empty name, a share outside [0, 1], or a cluster level no cluster run has; returns nothing.';

DROP FUNCTION ccvec.ab_alternates_clicked();
CREATE FUNCTION ccvec.ab_alternates_clicked(p_experiment text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(DISTINCT o.shown) FROM ccvec.ab_outcome o
    WHERE o.experiment = p_experiment AND o.substituted AND o.clicked
$$;
COMMENT ON FUNCTION ccvec.ab_alternates_clicked(text) IS
    'How many distinct images shown as substitutes in experiment p_experiment drew a click (ccvec.ab_alternate_signal has every experiment''s).';

CREATE FUNCTION ccvec.ab_unmatched_events(p_experiment text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.ab_event e
    WHERE e.experiment = p_experiment
      AND NOT EXISTS (SELECT 1 FROM ccvec.ab_served s
                      WHERE s.experiment = e.experiment AND s.session = e.session AND s.query = e.query
                        AND s.shown = e.result_uuid)
$$;
COMMENT ON FUNCTION ccvec.ab_unmatched_events(text) IS
    'How many imported events of experiment p_experiment match no position it served (same session, query and shown image): events of another experiment, from before it started, or of images it never showed. The analysis leaves them out.';

CREATE FUNCTION ccvec.add_ab_import_error(p_source text, p_reason text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.load_error (run_id, source, stage, reason)
    SELECT NULL, p_source, 'ab-import', p_reason
    WHERE NOT EXISTS (SELECT 1 FROM ccvec.load_error e
                      WHERE e.run_id IS NULL AND e.stage = 'ab-import' AND e.source = p_source
                        AND e.reason = p_reason)
    RETURNING true
$$;
COMMENT ON FUNCTION ccvec.add_ab_import_error(text, text) IS
    'Records one analytics event that `ccvec experiment import` refused (p_source: file:line), unless the same refusal is recorded already, so re-importing a file does not repeat its rejections; true when recorded now.';
