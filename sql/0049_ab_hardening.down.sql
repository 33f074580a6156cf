DROP FUNCTION ccvec.add_ab_import_error(text, text);
DROP FUNCTION ccvec.ab_unmatched_events(text);
DROP FUNCTION ccvec.ab_alternates_clicked(text);
CREATE FUNCTION ccvec.ab_alternates_clicked() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.ab_alternate_signal WHERE clicks > 0
$$;
COMMENT ON FUNCTION ccvec.ab_alternates_clicked() IS
    'How many shown alternates were clicked at least once: observed signal for images the catalog rarely shows.';

-- 0013's substitute and 0024's create_experiment
CREATE OR REPLACE FUNCTION ccvec.substitute(p_experiment text, p_session text, p_query text, p_results uuid[])
RETURNS TABLE (rank integer, shown uuid, original uuid, arm text, substituted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    e ccvec.experiment;
    v_arm text;
    on_page uuid[] := p_results;
    mate uuid;
    i integer;
BEGIN
    SELECT * INTO e FROM ccvec.experiment x WHERE x.name = p_experiment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no experiment named %', p_experiment USING ERRCODE = 'VC002';
    END IF;
    v_arm := ccvec.assign_arm(p_experiment, p_session);
    FOR i IN 1 .. coalesce(array_length(p_results, 1), 0) LOOP
        mate := NULL;
        IF v_arm = 'treatment'
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
        INSERT INTO ccvec.ab_served AS a (experiment, session, query, rank, shown, original, arm, substituted)
        VALUES (p_experiment, p_session, p_query, i, coalesce(mate, p_results[i]), p_results[i], v_arm,
                mate IS NOT NULL)
        ON CONFLICT ON CONSTRAINT ab_served_pkey DO NOTHING;
        rank := i;
        shown := coalesce(mate, p_results[i]);
        original := p_results[i];
        arm := v_arm;
        substituted := mate IS NOT NULL;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION ccvec.substitute(text, text, text, uuid[]) IS
    'The page to show for ordered results p_results: one row per rank from 1 with the shown image, the original, the session''s arm and whether substituted. In treatment, ranks where ccvec.unit_hash(salt:session:query:rank) < substitution_share show the best-placed cluster-mate (at the experiment''s level) not already on the page, when there is one. Logs every row in ccvec.ab_served (the first serving of a rank wins). Raises when there is no experiment by that name.';

CREATE OR REPLACE FUNCTION ccvec.create_experiment(p_name text, p_salt text, p_treatment_share double precision,
                                                   p_substitution_share double precision, p_level text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_treatment_share IS NULL OR NOT p_treatment_share BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'treatment share must be between 0 and 1, not %', p_treatment_share USING ERRCODE = 'VC001';
    END IF;
    IF p_substitution_share IS NULL OR NOT p_substitution_share BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'substitution share must be between 0 and 1, not %', p_substitution_share USING ERRCODE = 'VC001';
    END IF;
    INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share, cluster_level)
    VALUES (p_name, p_salt, p_treatment_share, p_substitution_share, p_level);
END $$;
COMMENT ON FUNCTION ccvec.create_experiment(text, text, double precision, double precision, text) IS
    'Starts experiment p_name (a unique violation when the name is taken); raises VC001 unless both shares are in [0, 1]; returns nothing.';
