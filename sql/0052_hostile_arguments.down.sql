-- 0052 down: the definitions and comments these functions had at 0049 (dumped from a database at 0049).
CREATE OR REPLACE FUNCTION ccvec.configure_mih(p_chunks integer, p_max_masks integer DEFAULT 100000)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    widths integer[];
    c record;
    w integer;
    max_weight integer := 0;
    total numeric;
BEGIN
    IF p_chunks NOT BETWEEN 1 AND 16 THEN
        RAISE EXCEPTION 'number of chunks must be between 1 and 16, not %', p_chunks USING ERRCODE = 'VC001';
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
    DELETE FROM ccvec.mih_mask_set;
    FOR w IN SELECT DISTINCT unnest(widths) LOOP
        INSERT INTO ccvec.mih_mask_set (bits, weight, masks)
        WITH RECURSIVE m(mask, weight, top) AS (
            SELECT 0::bigint, 0, -1
            UNION ALL
            SELECT m.mask | (1::bigint << b), m.weight + 1, b
            FROM m, generate_series(0, w - 1) b
            WHERE b > m.top AND m.weight < max_weight
        )
        SELECT w, t, array_agg(m.mask ORDER BY m.weight, m.mask)
        FROM m JOIN generate_series(0, max_weight) t ON m.weight <= t
        GROUP BY t;
    END LOOP;
    FOR c IN SELECT * FROM ccvec.mih_chunks(widths) LOOP
        EXECUTE format('CREATE INDEX image_feature_mih_%s ON ccvec.image_feature (((phash >> %s) & %s)) INCLUDE (phash, identifier)',
                       c.chunk - 1, c.shift, c.mask);
    END LOOP;
    PERFORM ccvec.mih_make_candidates(widths);
    DELETE FROM ccvec.mih_config;
    INSERT INTO ccvec.mih_config (widths, max_weight, rows_at_configure)
    VALUES (widths, max_weight, (SELECT count(*) FROM ccvec.image_feature));
    PERFORM ccvec.mih_make_plan();
    ANALYZE ccvec.image_feature;
    ANALYZE ccvec.mih_mask_set;
END $function$
;
COMMENT ON FUNCTION ccvec.configure_mih(integer,integer) IS 'Re-chunk multi-index hashing into p_chunks (1..16) chunks of near-equal width: recreates the chunk expression indexes on ccvec.image_feature, precomputes ccvec.mih_mask_set up to the largest weight whose masks for the widest chunk number at most p_max_masks, regenerates ccvec.mih_candidates() for the layout, records it in ccvec.mih_config and the probe plan of every radius in ccvec.mih_plan and analyzes image_feature. Rebuilds indexes over the whole table: run it after loading, not per query.';

CREATE OR REPLACE FUNCTION ccvec.mih_probe_count(p_widths integer[], p_weights integer[])
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT coalesce(sum(ccvec.binomial(u.w, k)), 0)::bigint
    FROM unnest(p_widths, p_weights) AS u(w, t), generate_series(0, u.t) AS k
$function$
;
COMMENT ON FUNCTION ccvec.mih_probe_count(integer[],integer[]) IS 'Index probes of a multi-index search that probes each chunk (of widths p_widths) at the weight in p_weights: the sum over chunks of C(width, 0..weight).';

CREATE OR REPLACE FUNCTION ccvec.mih_thresholds(p_widths integer[], p_radius integer)
 RETURNS integer[]
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    -- sum(t_i + 1) = r + 1 spread evenly; the one-higher weights go to the narrowest (last) chunks
    SELECT array_agg((p_radius + 1) / m - 1 + CASE WHEN i > m - (p_radius + 1) % m THEN 1 ELSE 0 END
                     ORDER BY i)
    FROM (SELECT cardinality(p_widths) AS m) c, generate_series(1, cardinality(p_widths)) i
$function$
;
COMMENT ON FUNCTION ccvec.mih_thresholds(integer[],integer) IS 'Probe weight per chunk for an exact Hamming search within p_radius bits over chunks of widths p_widths (generalised pigeonhole: the weights plus one sum to p_radius + 1; -1 means the chunk is not probed).';

CREATE OR REPLACE FUNCTION ccvec.mih_make_candidates(p_widths integer[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    c record;
    branches text[] := '{}';
BEGIN
    FOR c IN SELECT * FROM ccvec.mih_chunks(p_widths) LOOP
        -- a weight of -1 (or above the layout's masks) finds no mask set: the chunk probes nothing
        branches := branches || format(
            'SELECT identifier, phash FROM ccvec.image_feature WHERE ((phash >> %1$s) & %2$s) = ANY (ARRAY(
                 SELECT ((p_phash >> %1$s) & %2$s) # m FROM ccvec.mih_mask_set s, unnest(s.masks) m
                 WHERE s.bits = %3$s AND s.weight = p_weights[%4$s]))', c.shift, c.mask, c.bits, c.chunk);
    END LOOP;
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weights integer[])
         RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE AS $f$ %s $f$',
        array_to_string(branches, ' UNION ALL '));
END $function$
;
COMMENT ON FUNCTION ccvec.mih_make_candidates(integer[]) IS 'Generate ccvec.mih_candidates(bigint, integer[]) for the chunk layout of widths p_widths (its indexes and ccvec.mih_mask_set must exist: ccvec.configure_mih() builds them, then calls this).';

CREATE OR REPLACE FUNCTION ccvec.canonical_order(p_prefer text[])
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    key text;
    parts text[] := '{}';
BEGIN
    FOREACH key IN ARRAY p_prefer LOOP
        parts := parts || CASE key
            WHEN 'original'  THEN 'derived ASC'
            WHEN 'largest'   THEN 'pixels DESC'
            WHEN 'pixels'    THEN 'pixels DESC'
            WHEN 'provider'  THEN 'provider_rank ASC'
            WHEN 'oldest'    THEN 'created_on ASC NULLS LAST'
            WHEN 'newest'    THEN 'created_on DESC NULLS LAST'
            ELSE NULL END;
        IF parts[cardinality(parts)] IS NULL THEN
            RAISE EXCEPTION 'unknown canonical preference %, use original, largest, provider, oldest or newest', key USING ERRCODE = 'VC001';
        END IF;
    END LOOP;
    RETURN array_to_string(parts || 'node'::text, ', ');
END $function$
;
COMMENT ON FUNCTION ccvec.canonical_order(text[]) IS 'ORDER BY for choosing a group''s canonical image from preference keys (original, largest, provider, oldest, newest).';

CREATE OR REPLACE FUNCTION ccvec.use_catalog(source regclass)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
        RAISE EXCEPTION 'catalog table % needs at least the columns identifier and url', source USING ERRCODE = 'VC003';
    END IF;
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        cols := cols || CASE WHEN i > 1 THEN ', ' ELSE '' END ||
                CASE WHEN wanted[i] = ANY(present)
                     THEN format('%I::%s AS %I', wanted[i], casts[i], wanted[i])
                     ELSE format('NULL::%s AS %I', casts[i], wanted[i]) END;
    END LOOP;
    EXECUTE format('CREATE OR REPLACE VIEW ccvec.catalog AS SELECT %s FROM %s', cols, source);
END $function$
;
COMMENT ON FUNCTION ccvec.use_catalog(regclass) IS 'Point ccvec.catalog at an existing Openverse-style image table; ccvec.image by default.';

CREATE OR REPLACE FUNCTION ccvec.revoke_access(p_role text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA ccvec FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA ccvec FROM %I', p_role);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION ccvec.create_embedding_index(text, integer, integer), '
                   'ccvec.drop_embedding_index(text) FROM %I', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA ccvec FROM %I', p_role);
END $function$
;
COMMENT ON FUNCTION ccvec.revoke_access(text) IS 'Takes back every access level granted to a role.';

CREATE OR REPLACE FUNCTION ccvec.nearest(p_model text, p_query halfvec, p_k integer, p_exclude uuid DEFAULT NULL::uuid)
 RETURNS TABLE(identifier uuid, similarity real)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT n.identifier, n.similarity
         FROM (SELECT e.identifier, (1 - (e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)))::real AS similarity
               FROM ccvec.image_embedding e
               WHERE e.model = %2$L AND e.identifier IS DISTINCT FROM $3
               ORDER BY e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)
               LIMIT $2) n
         ORDER BY n.similarity DESC, n.identifier', d, p_model)
    USING p_query, p_k, p_exclude;
END $function$
;
COMMENT ON FUNCTION ccvec.nearest(text,halfvec,integer,uuid) IS 'The p_k images of model p_model nearest to vector p_query (of the model''s dimension) by cosine, with similarity = 1 - cosine distance, listed by that similarity (highest first, ties by identifier); p_exclude, when given, is left out. Through the model''s HNSW index when it exists (approximate, hnsw.ef_search: the index picks the images, whose order it only approximates), an exact scan otherwise. Raises when the model is not registered.';

CREATE OR REPLACE FUNCTION ccvec.nearest_lean(p_model text, p_query halfvec, p_k integer, p_candidates integer DEFAULT 200, p_exclude uuid DEFAULT NULL::uuid)
 RETURNS TABLE(identifier uuid, similarity real)
 LANGUAGE plpgsql
AS $function$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    IF p_k < 1 OR p_candidates < p_k THEN
        RAISE EXCEPTION 'need 1 <= k <= candidates, got k % and candidates %', p_k, p_candidates
            USING ERRCODE = 'VC001';
    END IF;
    PERFORM set_config('hnsw.ef_search', greatest(p_candidates, current_setting('hnsw.ef_search')::integer)::text, true);
    -- With hundreds of candidates the planner would rather scan and sort every sign vector of the
    -- model (1 s per query at 100k, bench/scale.py): make the candidates come from the index.
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_sort', 'off', true);
    RETURN QUERY EXECUTE format(
        'SELECT c.identifier, (1 - (c.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)))::real
         FROM (SELECT e.identifier, e.embedding FROM ccvec.image_embedding e
               WHERE e.model = %2$L AND e.identifier IS DISTINCT FROM $3
               ORDER BY binary_quantize(e.embedding::halfvec(%1$s))::bit(%1$s) <~> binary_quantize($1::halfvec(%1$s))::bit(%1$s)
               LIMIT $4) c
         ORDER BY c.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)
         LIMIT $2', d, p_model)
    USING p_query, p_k, p_exclude, p_candidates;
END $function$
;
COMMENT ON FUNCTION ccvec.nearest_lean(text,halfvec,integer,integer,uuid) IS 'The memory-lean search (issue 15; recall in docs/scale.md): the p_candidates images of model p_model nearest to p_query by Hamming distance between sign bits (binary_quantize; through the binary HNSW index of ccvec.create_vector_index(''binary'', …) when it exists), reranked by cosine on the full halfvec, the p_k best returned with similarity = 1 - cosine distance; p_exclude is left out. Exact when p_candidates covers every image. Raises VC001 unless 1 <= p_k <= p_candidates.';

CREATE OR REPLACE FUNCTION ccvec.exact_nearest(p_model text, p_identifier uuid, p_k integer)
 RETURNS TABLE(identifier uuid, similarity real)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE q halfvec;
BEGIN
    SELECT e.embedding INTO q FROM ccvec.image_embedding e WHERE e.model = p_model AND e.identifier = p_identifier;
    RETURN QUERY
        SELECT e.identifier, (1 - (e.embedding <=> q))::real
        FROM ccvec.image_embedding e
        WHERE e.model = p_model AND e.identifier <> p_identifier
        ORDER BY e.embedding <=> q, e.identifier
        LIMIT p_k;
END $function$
;
COMMENT ON FUNCTION ccvec.exact_nearest(text,uuid,integer) IS 'The exact p_k nearest images of an image by cosine (sequential scan, ties by identifier), with similarity: the reference HNSW recall is measured against. The image needs an embedding from the model (else similarities are NULL).';

CREATE OR REPLACE FUNCTION ccvec.vector_index_body(p_kind text, p_model text, p_m integer, p_ef_construction integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    RETURN format('USING hnsw (%s) WITH (m = %s, ef_construction = %s) WHERE model = %L',
                  CASE p_kind WHEN 'halfvec' THEN format('(embedding::halfvec(%s)) halfvec_cosine_ops', d)
                              WHEN 'binary' THEN format('(binary_quantize(embedding::halfvec(%1$s))::bit(%1$s)) bit_hamming_ops', d)
                  END,
                  p_m, p_ef_construction, p_model);
END $function$
;
COMMENT ON FUNCTION ccvec.vector_index_body(text,text,integer,integer) IS 'The USING hnsw (…) WITH (m, ef_construction) WHERE model = … clause of a model''s index of kind halfvec (cosine on embedding::halfvec(dim)) or binary (Hamming on binary_quantize(embedding::halfvec(dim))::bit(dim)). Raises when the model is not registered.';

