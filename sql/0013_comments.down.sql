-- Undo 0013: the comments it set (use_catalog keeps the one 0001 gave it), and the placeholder
-- ccvec.mih_candidates() when no chunk layout is configured.

COMMENT ON TABLE ccvec.image IS NULL;
COMMENT ON VIEW ccvec.catalog IS NULL;
COMMENT ON TABLE ccvec.model IS NULL;
COMMENT ON TABLE ccvec.image_feature IS NULL;
COMMENT ON TABLE ccvec.image_embedding IS NULL;
COMMENT ON FUNCTION ccvec.check_embedding_dim() IS NULL;
COMMENT ON TABLE ccvec.load_run IS NULL;
COMMENT ON TABLE ccvec.load_error IS NULL;
COMMENT ON FUNCTION ccvec.create_load_stage() IS NULL;
COMMENT ON FUNCTION ccvec.ingest_batch(text, boolean) IS NULL;
COMMENT ON FUNCTION ccvec.missing_embeddings(text, uuid[]) IS NULL;
COMMENT ON TABLE ccvec.mih_config IS NULL;
COMMENT ON TABLE ccvec.mih_mask IS NULL;
COMMENT ON FUNCTION ccvec.hamming(bigint, bigint) IS NULL;
COMMENT ON FUNCTION ccvec.mih_chunks(integer[]) IS NULL;
COMMENT ON FUNCTION ccvec.binomial(integer, integer) IS NULL;
COMMENT ON FUNCTION ccvec.configure_mih(integer, integer) IS NULL;
COMMENT ON FUNCTION ccvec.mih_candidates(bigint, integer) IS NULL;
COMMENT ON FUNCTION ccvec.mih_probe_cost() IS NULL;
COMMENT ON FUNCTION ccvec.hamming_neighbours(bigint, integer) IS NULL;
COMMENT ON FUNCTION ccvec.hamming_pairs(integer) IS NULL;
COMMENT ON TABLE ccvec.provider_class IS NULL;
COMMENT ON FUNCTION ccvec.source_class_rank(text) IS NULL;
COMMENT ON TABLE ccvec.duplicate_run IS NULL;
COMMENT ON TABLE ccvec.duplicate_member IS NULL;
COMMENT ON FUNCTION ccvec.canonical_order_sql(text[]) IS NULL;
COMMENT ON FUNCTION ccvec.assign_duplicates(bigint, integer) IS NULL;
COMMENT ON VIEW ccvec.duplicate_group IS NULL;
COMMENT ON TABLE ccvec.setting IS NULL;
COMMENT ON FUNCTION ccvec.setting(text) IS NULL;
COMMENT ON FUNCTION ccvec.model_dim(text) IS NULL;
COMMENT ON FUNCTION ccvec.embedding_index_name(text) IS NULL;
COMMENT ON FUNCTION ccvec.create_embedding_index(text, integer, integer) IS NULL;
COMMENT ON FUNCTION ccvec.drop_embedding_index(text) IS NULL;
COMMENT ON FUNCTION ccvec.has_embedding_index(text) IS NULL;
COMMENT ON FUNCTION ccvec.nearest(text, halfvec, integer, uuid) IS NULL;
COMMENT ON FUNCTION ccvec.similar(uuid, integer, text) IS NULL;
COMMENT ON TABLE ccvec.knn_run IS NULL;
COMMENT ON TABLE ccvec.knn_edge IS NULL;
COMMENT ON VIEW ccvec.knn_current IS NULL;
COMMENT ON FUNCTION ccvec.knn_candidates(text, uuid[], integer, integer) IS NULL;
COMMENT ON FUNCTION ccvec.knn_insert(bigint, uuid[]) IS NULL;
COMMENT ON FUNCTION ccvec.knn_add(bigint, uuid[], integer) IS NULL;
COMMENT ON FUNCTION ccvec.exact_nearest(text, uuid, integer) IS NULL;
COMMENT ON TABLE ccvec.cluster_run IS NULL;
COMMENT ON TABLE ccvec.cluster_member IS NULL;
COMMENT ON VIEW ccvec.image_cluster IS NULL;
COMMENT ON FUNCTION ccvec.cluster_threshold(bigint, real) IS NULL;
COMMENT ON FUNCTION ccvec.cluster_nodes(bigint, boolean) IS NULL;
COMMENT ON FUNCTION ccvec.cluster_save(bigint, jsonb) IS NULL;
COMMENT ON FUNCTION ccvec.cluster_graph(bigint, real, boolean, text) IS NULL;
COMMENT ON FUNCTION ccvec.cluster_average(bigint, real, text) IS NULL;
DO $$
BEGIN
    IF obj_description('ccvec.inferred_tags'::regclass, 'pg_class') = 'Tags (lower-cased, trimmed) an image''s neighbours in the current graph carry and it does not: score = similarity-weighted share of the neighbourhood carrying the tag, support = neighbours carrying it; kept when at least settings inferred_tags.min_support and inferred_tags.min_score. Refreshed by ccvec refresh.' THEN
        COMMENT ON MATERIALIZED VIEW ccvec.inferred_tags IS NULL;
    END IF;
END $$;
COMMENT ON VIEW ccvec.popularity_source IS NULL;
COMMENT ON MATERIALIZED VIEW ccvec.neighbourhood_popularity IS NULL;
COMMENT ON TABLE ccvec.popularity_metric IS NULL;
COMMENT ON FUNCTION ccvec.metric_value(jsonb, text) IS NULL;
COMMENT ON FUNCTION ccvec.refresh_popularity_constants() IS NULL;
COMMENT ON FUNCTION ccvec.standardize(double precision, double precision) IS NULL;
COMMENT ON MATERIALIZED VIEW ccvec.observed_popularity IS NULL;
COMMENT ON TABLE ccvec.visualrank_run IS NULL;
COMMENT ON TABLE ccvec.visual_rank IS NULL;
COMMENT ON FUNCTION ccvec.visualrank(bigint, double precision, double precision) IS NULL;
COMMENT ON TABLE ccvec.web_rank IS NULL;
COMMENT ON TABLE ccvec.web_rank_release IS NULL;
COMMENT ON FUNCTION ccvec.reverse_host(text) IS NULL;
COMMENT ON FUNCTION ccvec.reversed_domain(text) IS NULL;
COMMENT ON FUNCTION ccvec.web_rank_score(bigint, bigint) IS NULL;
COMMENT ON MATERIALIZED VIEW ccvec.web_authority IS NULL;
COMMENT ON MATERIALIZED VIEW ccvec.image_score IS NULL;
COMMENT ON TABLE ccvec.experiment IS NULL;
COMMENT ON FUNCTION ccvec.unit_hash(text) IS NULL;
COMMENT ON FUNCTION ccvec.assign_arm(text, text) IS NULL;
COMMENT ON MATERIALIZED VIEW ccvec.cluster_mate IS NULL;
COMMENT ON TABLE ccvec.ab_served IS NULL;
COMMENT ON FUNCTION ccvec.substitute(text, text, text, uuid[]) IS NULL;
COMMENT ON TABLE ccvec.ab_event IS NULL;
COMMENT ON VIEW ccvec.ab_outcome IS NULL;
COMMENT ON VIEW ccvec.ab_alternate_signal IS NULL;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ccvec.mih_config) THEN
        DROP FUNCTION IF EXISTS ccvec.mih_candidates(bigint, integer);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION ccvec.mih_chunks(p_widths integer[])
RETURNS TABLE (chunk integer, shift integer, mask bigint, bits integer)
LANGUAGE sql IMMUTABLE AS $$
    SELECT i, 64 - sum(w) OVER (ORDER BY i), (1::bigint << w) - 1, w
    FROM unnest(p_widths) WITH ORDINALITY AS t(w, i)
$$;

-- The functions as 0001-0006 define them (RAISE without ccvec's SQLSTATEs).

CREATE OR REPLACE FUNCTION ccvec.use_catalog(source regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    wanted  text[] := ARRAY['identifier','provider','source','foreign_identifier',
                            'foreign_landing_url','url','thumbnail','width','height','filesize',
                            'license','license_version','creator','creator_url','title',
                            'meta_data','tags','category','watermarked','removed_from_source',
                            'standardized_popularity','created_on'];
    casts   text[] := ARRAY['uuid','text','text','text','text','text','text','integer','integer',
                            'integer','text','text','text','text','text','jsonb','jsonb','text',
                            'boolean','boolean','double precision','timestamptz'];
    present text[];
    cols    text := '';
    i       int;
BEGIN
    SELECT array_agg(attname::text) INTO present
    FROM pg_attribute WHERE attrelid = source AND attnum > 0 AND NOT attisdropped;
    IF NOT present @> ARRAY['identifier','url'] THEN
        RAISE EXCEPTION 'catalog table % needs at least the columns identifier and url', source;
    END IF;
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        cols := cols || CASE WHEN i > 1 THEN ', ' ELSE '' END ||
                CASE WHEN wanted[i] = ANY(present)
                     THEN format('%I::%s AS %I', wanted[i], casts[i], wanted[i])
                     ELSE format('NULL::%s AS %I', casts[i], wanted[i]) END;
    END LOOP;
    EXECUTE format('CREATE OR REPLACE VIEW ccvec.catalog AS SELECT %s FROM %s', cols, source);
END $$;

CREATE OR REPLACE FUNCTION ccvec.check_embedding_dim() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE expected integer;
BEGIN
    SELECT dim INTO expected FROM ccvec.model WHERE name = NEW.model;
    IF vector_dims(NEW.embedding) <> expected THEN
        RAISE EXCEPTION 'embedding for % has % dimensions, model % has %',
            NEW.identifier, vector_dims(NEW.embedding), NEW.model, expected;
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ccvec.configure_mih(p_chunks integer, p_max_masks integer DEFAULT 100000)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    widths integer[];
    c record;
    w integer;
    max_weight integer := 0;
    total numeric;
    branches text[] := '{}';
BEGIN
    IF p_chunks NOT BETWEEN 1 AND 16 THEN
        RAISE EXCEPTION 'number of chunks must be between 1 and 16, not %', p_chunks;
    END IF;
    -- widths differ by at most one bit, the wider chunks first
    SELECT array_agg(64 / p_chunks + CASE WHEN i <= 64 % p_chunks THEN 1 ELSE 0 END ORDER BY i)
      INTO widths FROM generate_series(1, p_chunks) i;
    -- masks: all weights whose cumulative count stays under p_max_masks for the widest chunk
    LOOP
        SELECT sum(ccvec.binomial(widths[1], k)) INTO total FROM generate_series(0, max_weight + 1) k;
        EXIT WHEN total > p_max_masks OR max_weight + 1 > widths[1];
        max_weight := max_weight + 1;
    END LOOP;
    FOR c IN SELECT indexname FROM pg_indexes
             WHERE schemaname = 'ccvec' AND indexname LIKE 'image\_feature\_mih\_%' LOOP
        EXECUTE format('DROP INDEX ccvec.%I', c.indexname);
    END LOOP;
    DELETE FROM ccvec.mih_mask;
    FOR w IN SELECT DISTINCT unnest(widths) LOOP
        INSERT INTO ccvec.mih_mask (bits, weight, mask)
        WITH RECURSIVE m(mask, weight, top) AS (
            SELECT 0::bigint, 0, -1
            UNION ALL
            SELECT m.mask | (1::bigint << b), m.weight + 1, b
            FROM m, generate_series(0, w - 1) b
            WHERE b > m.top AND m.weight < max_weight
        )
        SELECT w, weight, mask FROM m;
    END LOOP;
    FOR c IN SELECT * FROM ccvec.mih_chunks(widths) LOOP
        EXECUTE format('CREATE INDEX image_feature_mih_%s ON ccvec.image_feature (((phash >> %s) & %s)) INCLUDE (phash, identifier)',
                       c.chunk - 1, c.shift, c.mask);
        -- one branch of the search per chunk: index scan on the chunk = any probe value
        branches := branches || format(
            'SELECT identifier, phash FROM ccvec.image_feature WHERE ((phash >> %1$s) & %2$s) = ANY (ARRAY(
                 SELECT ((p_phash >> %1$s) & %2$s) # m.mask FROM ccvec.mih_mask m
                 WHERE m.bits = %3$s AND m.weight <= p_weight))', c.shift, c.mask, c.bits);
    END LOOP;
    -- A static function for this layout, so its plan is cached (dynamic SQL would re-plan per call).
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weight integer)
         RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE AS $f$ %s $f$',
        array_to_string(branches, ' UNION ALL '));
    DELETE FROM ccvec.mih_config;
    INSERT INTO ccvec.mih_config (widths, max_weight, probes, rows_at_configure)
    SELECT widths, max_weight,
           array_agg((SELECT sum(ccvec.binomial(u.cw, g.kk))::integer
                      FROM unnest(widths) u(cw), generate_series(0, t.sw) g(kk)) ORDER BY t.sw),
           (SELECT count(*) FROM ccvec.image_feature)
    FROM generate_series(0, max_weight) t(sw);
    ANALYZE ccvec.image_feature;
END $$;

CREATE OR REPLACE FUNCTION ccvec.hamming_neighbours(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg ccvec.mih_config;
    s integer;
    est_rows real;
BEGIN
    IF p_radius IS NULL OR p_radius < 0 THEN
        RAISE EXCEPTION 'radius must be >= 0, not %', p_radius;
    END IF;
    SELECT * INTO cfg FROM ccvec.mih_config;
    IF FOUND THEN
        s := p_radius / cardinality(cfg.widths);
        SELECT reltuples INTO est_rows FROM pg_class WHERE oid = 'ccvec.image_feature'::regclass;
    END IF;
    IF cfg IS NULL OR s > cfg.max_weight
       OR cfg.probes[s + 1]::real * ccvec.mih_probe_cost() > greatest(est_rows, cfg.rows_at_configure) THEN
        RETURN QUERY SELECT f.identifier, ccvec.hamming(f.phash, p_phash)
                     FROM ccvec.image_feature f WHERE ccvec.hamming(f.phash, p_phash) <= p_radius;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT c.identifier, ccvec.hamming(c.phash, p_phash)
        FROM ccvec.mih_candidates(p_phash, s) c
        WHERE ccvec.hamming(c.phash, p_phash) <= p_radius
        GROUP BY c.identifier, c.phash;
END $$;

CREATE OR REPLACE FUNCTION ccvec.canonical_order_sql(p_prefer text[]) RETURNS text
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
            RAISE EXCEPTION 'unknown canonical preference %, use pixels, provider, oldest or newest', key;
        END IF;
    END LOOP;
    RETURN array_to_string(parts || 'f.identifier'::text, ', ');
END $$;

CREATE OR REPLACE FUNCTION ccvec.model_dim(p_model text) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE d integer;
BEGIN
    SELECT dim INTO d FROM ccvec.model WHERE name = p_model;
    IF d IS NULL THEN
        RAISE EXCEPTION 'no model named %', p_model;
    END IF;
    RETURN d;
END $$;

CREATE OR REPLACE FUNCTION ccvec.similar(p_identifier uuid, p_k integer DEFAULT 10,
                              p_model text DEFAULT 'efficientnet-lite0')
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql STABLE AS $$
DECLARE q halfvec;
BEGIN
    SELECT e.embedding INTO q FROM ccvec.image_embedding e
    WHERE e.model = p_model AND e.identifier = p_identifier;
    IF q IS NULL THEN
        RAISE EXCEPTION 'image % has no % embedding', p_identifier, p_model;
    END IF;
    RETURN QUERY SELECT * FROM ccvec.nearest(p_model, q, p_k, p_identifier);
END $$;

CREATE OR REPLACE FUNCTION ccvec.visualrank(p_knn_run bigint, p_damping double precision DEFAULT NULL,
                                 p_tolerance double precision DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_run bigint;
    d double precision := coalesce(p_damping, ccvec.setting('visualrank.damping'));
    tol double precision := coalesce(p_tolerance, ccvec.setting('visualrank.tolerance'));
    max_it integer := ccvec.setting('visualrank.max_iterations')::integer;
    n integer;
    it integer := 0;
    delta double precision := 1;
    dangling double precision;
BEGIN
    INSERT INTO ccvec.visualrank_run (knn_run, damping, tolerance) VALUES (p_knn_run, d, tol) RETURNING id INTO v_run;
    -- whole-table passes: hash joins, never nested loops of probes over a million edges
    PERFORM set_config('enable_nestloop', 'off', true);
    -- nodes: every image on either end of an edge
    CREATE TEMP TABLE vr_node ON COMMIT DROP AS
    SELECT node, (row_number() OVER (ORDER BY node))::integer AS id
    FROM (SELECT identifier AS node FROM ccvec.knn_edge WHERE run_id = p_knn_run
          UNION SELECT neighbour FROM ccvec.knn_edge WHERE run_id = p_knn_run) x;
    ALTER TABLE vr_node ADD PRIMARY KEY (id);
    CREATE UNIQUE INDEX ON vr_node (node);
    SELECT count(*) INTO n FROM vr_node;
    IF n = 0 THEN
        RAISE EXCEPTION 'kNN run % has no edges', p_knn_run;
    END IF;
    -- transition weights, normalised per source (negative similarities carry no vote)
    CREATE TEMP TABLE vr_edge ON COMMIT DROP AS
    SELECT s.id AS src, t.id AS dst, greatest(e.similarity, 0)::double precision AS w
    FROM ccvec.knn_edge e JOIN vr_node s ON s.node = e.identifier JOIN vr_node t ON t.node = e.neighbour
    WHERE e.run_id = p_knn_run;
    ANALYZE vr_edge;
    UPDATE vr_edge v SET w = v.w / t.total
    FROM (SELECT src, sum(w) AS total FROM vr_edge GROUP BY src) t WHERE t.src = v.src AND t.total > 0;
    DELETE FROM vr_edge WHERE w <= 0;
    ANALYZE vr_edge;
    -- start: previous ranks where known, uniform otherwise; renormalised
    CREATE TEMP TABLE vr_rank ON COMMIT DROP AS
    SELECT v.id, coalesce(p.rank, 1.0 / n) AS r, s.src IS NULL AS is_dangling
    FROM vr_node v
    LEFT JOIN ccvec.visual_rank p ON p.identifier = v.node
    LEFT JOIN (SELECT DISTINCT src FROM vr_edge) s ON s.src = v.id;
    UPDATE vr_rank SET r = r / (SELECT sum(r) FROM vr_rank);
    ALTER TABLE vr_rank ADD PRIMARY KEY (id);
    ANALYZE vr_rank;
    WHILE delta > tol AND it < max_it LOOP
        SELECT coalesce(sum(r), 0) INTO dangling FROM vr_rank WHERE is_dangling;
        CREATE TEMP TABLE vr_next ON COMMIT DROP AS
        SELECT v.id, v.is_dangling,
               (1 - d) / n + d * (coalesce(i.incoming, 0) + dangling / n) AS r
        FROM vr_rank v
        LEFT JOIN (SELECT e.dst, sum(e.w * s.r) AS incoming FROM vr_edge e JOIN vr_rank s ON s.id = e.src
                   GROUP BY e.dst) i ON i.dst = v.id;
        SELECT sum(abs(x.r - y.r)) INTO delta FROM vr_next x JOIN vr_rank y USING (id);
        DROP TABLE vr_rank;
        ALTER TABLE vr_next RENAME TO vr_rank;
        ALTER TABLE vr_rank ADD PRIMARY KEY (id);
        ANALYZE vr_rank;
        it := it + 1;
    END LOOP;
    DELETE FROM ccvec.visual_rank;
    INSERT INTO ccvec.visual_rank (identifier, rank, score, run_id)
    SELECT v.node, r.r, (percent_rank() OVER (ORDER BY r.r))::real, v_run
    FROM vr_rank r JOIN vr_node v USING (id);
    UPDATE ccvec.visualrank_run SET iterations = it, residual = delta, nodes = n, finished_at = now()
    WHERE id = v_run;
    DROP TABLE vr_rank; DROP TABLE vr_edge; DROP TABLE vr_node;
    RETURN v_run;
END $$;

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
        RAISE EXCEPTION 'no experiment named %', p_experiment;
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
