-- Validation happens once, in SQL where the data is (issue 16); and the first round's dead code goes.
--
-- * ccvec.create_experiment checks both shares itself (VC001), so neither the CLI nor the Python
--   API repeats the range check (the table's CHECK constraints stay as the last line of defence).
-- * ccvec.assign_duplicates and ccvec.canonical_order_sql served the first round's canonical-first
--   grouping, replaced in 0008 by average-linkage groups (ccvec.canonical_order): nothing calls them.

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

DROP FUNCTION ccvec.assign_duplicates(bigint, integer);
DROP FUNCTION ccvec.canonical_order_sql(text[]);
