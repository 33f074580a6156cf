-- Back to 0017's create_experiment (no range check of its own) and 0003/0013's dead functions.

CREATE OR REPLACE FUNCTION ccvec.create_experiment(p_name text, p_salt text, p_treatment_share double precision,
                                        p_substitution_share double precision, p_level text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share, cluster_level)
    VALUES (p_name, p_salt, p_treatment_share, p_substitution_share, p_level)
$$;
COMMENT ON FUNCTION ccvec.create_experiment(text, text, double precision, double precision, text) IS
    'Starts experiment p_name (a unique violation when the name is taken); returns nothing.';

CREATE FUNCTION ccvec.canonical_order_sql(p_prefer text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    key text;
    parts text[] := '{}';
BEGIN
    FOREACH key IN ARRAY p_prefer LOOP
        parts := parts || CASE key
            WHEN 'pixels'   THEN 'f.width::bigint * f.height DESC'
            WHEN 'provider' THEN 'ccvec.source_class_rank(pc.source_class) ASC'
            WHEN 'oldest'   THEN 'c.created_on ASC NULLS LAST'
            WHEN 'newest'   THEN 'c.created_on DESC NULLS LAST'
            ELSE NULL END;
        IF parts[cardinality(parts)] IS NULL THEN
            RAISE EXCEPTION 'unknown canonical preference %, use pixels, provider, oldest or newest', key USING ERRCODE = 'VC001';
        END IF;
    END LOOP;
    RETURN array_to_string(parts || 'f.identifier'::text, ', ');
END $$;

CREATE FUNCTION ccvec.assign_duplicates(p_run_id bigint, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.duplicate_run;
    rec record;
    best record;
    q halfvec;
    n integer := 0;
BEGIN
    SELECT * INTO run FROM ccvec.duplicate_run WHERE id = p_run_id;
    FOR rec IN EXECUTE format(
        'SELECT f.identifier, f.phash FROM ccvec.image_feature f
         LEFT JOIN ccvec.catalog c ON c.identifier = f.identifier
         LEFT JOIN ccvec.provider_class pc ON pc.provider = c.provider
         WHERE NOT EXISTS (SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier)
         ORDER BY %s LIMIT %s', ccvec.canonical_order_sql(run.prefer), p_limit)
    LOOP
        SELECT d.group_id, nb.distance, NULL::real AS similarity, 'phash' AS matched_by INTO best
        FROM ccvec.hamming_neighbours(rec.phash, run.radius) nb
        JOIN ccvec.duplicate_member d ON d.identifier = nb.identifier AND d.canonical
        ORDER BY nb.distance, d.group_id
        LIMIT 1;
        IF NOT FOUND AND run.cosine IS NOT NULL THEN
            SELECT e.embedding INTO q FROM ccvec.image_embedding e
            WHERE e.model = run.model AND e.identifier = rec.identifier;
            IF q IS NOT NULL THEN
                SELECT d.group_id, ccvec.hamming(f.phash, rec.phash) AS distance, nb.similarity,
                       'embedding' AS matched_by INTO best
                FROM ccvec.nearest(run.model, q, 10, rec.identifier) nb
                JOIN ccvec.duplicate_member d ON d.identifier = nb.identifier AND d.canonical
                JOIN ccvec.image_feature f ON f.identifier = nb.identifier
                WHERE nb.similarity >= run.cosine
                ORDER BY nb.similarity DESC, d.group_id
                LIMIT 1;
            END IF;
        END IF;
        IF best.group_id IS NOT NULL THEN
            INSERT INTO ccvec.duplicate_member
            VALUES (rec.identifier, best.group_id, false, best.distance, best.similarity, best.matched_by, p_run_id);
        ELSE
            INSERT INTO ccvec.duplicate_member VALUES (rec.identifier, rec.identifier, true, 0, NULL, 'canonical', p_run_id);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

COMMENT ON FUNCTION ccvec.canonical_order_sql(text[]) IS
    'SQL text of the ORDER BY that ranks canonical candidates by the preference keys in order: pixels (most first), provider (ccvec.source_class_rank), oldest, newest (catalog created_on); identifier breaks ties. Raises on any other key, so only whitelisted SQL comes out. Expects aliases f (image_feature), c (catalog), pc (provider_class).';
COMMENT ON FUNCTION ccvec.assign_duplicates(bigint, integer) IS
    'Group up to p_limit ungrouped images for duplicate run p_run_id, best canonical candidates first: each joins the nearest canonical within the run''s radius, else (when the run sets a cosine threshold) the most similar canonical among its 10 nearest embeddings at or above it, else becomes the canonical of a new group. Writes ccvec.duplicate_member; returns how many it assigned (0 when all are). Serves full builds and incremental additions alike.';
