-- Hash partitioning of the tables that grow with the catalog (issue 15): image_feature,
-- image_embedding and knn_edge, partitioned on identifier. One partition (the default) is the plain
-- layout of 0001/0004. Every ccvec function reads and writes the parent tables by name, so nothing
-- else changes: the planner fans a query out over the partitions and merges the answers.

CREATE FUNCTION ccvec.partitionable_tables() RETURNS SETOF text
LANGUAGE sql IMMUTABLE AS $$ VALUES ('image_feature'), ('image_embedding'), ('knn_edge') $$;
COMMENT ON FUNCTION ccvec.partitionable_tables() IS
    'The tables ccvec.repartition() can hash-partition on identifier: image_feature, image_embedding, knn_edge.';

-- Partitions of a ccvec table: 1 for a plain table.
CREATE FUNCTION ccvec.partition_count(p_table text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c.relkind = 'p'
                THEN (SELECT count(*)::integer FROM pg_inherits i WHERE i.inhparent = c.oid)
                ELSE 1 END
    FROM pg_class c WHERE c.oid = to_regclass('ccvec.' || p_table)
$$;
COMMENT ON FUNCTION ccvec.partition_count(text) IS
    'Number of hash partitions of table ccvec.p_table: 1 for a plain table, NULL when there is no such table.';

CREATE FUNCTION ccvec.table_partitions(p_table text) RETURNS SETOF regclass
LANGUAGE sql STABLE AS $$
    SELECT i.inhrelid::regclass FROM pg_inherits i
    WHERE i.inhparent = to_regclass('ccvec.' || p_table)
    UNION ALL
    SELECT c.oid::regclass FROM pg_class c WHERE c.oid = to_regclass('ccvec.' || p_table) AND c.relkind = 'r'
    ORDER BY 1
$$;
COMMENT ON FUNCTION ccvec.table_partitions(text) IS
    'The partitions of ccvec.p_table in order, or the table itself when it is plain: where per-partition work (an HNSW build) runs.';

-- Re-create ccvec.p_table as p_partitions hash partitions on identifier (1: a plain table), moving
-- its rows. Runs in the caller's transaction: the table is either fully converted or untouched.
-- Views that depend on the table (knn_current and those built on it) are dropped and re-created
-- with their comments, grants and indexes; the table keeps its constraints, indexes, triggers,
-- comment and grants. HNSW indexes are NOT re-created here (a serial build inside one transaction
-- would be hours at catalog scale): the caller rebuilds them per partition in parallel.
CREATE FUNCTION ccvec.repartition(p_table text, p_partitions integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    old_oid oid;
    tmp     text := p_table || '__repartition';
    v       record;
    stmt    text;
    k       integer;
BEGIN
    IF p_table NOT IN (SELECT ccvec.partitionable_tables()) THEN
        RAISE EXCEPTION 'table % cannot be partitioned: only image_feature, image_embedding and knn_edge',
            p_table USING ERRCODE = 'VC001';
    END IF;
    IF p_partitions IS NULL OR p_partitions NOT BETWEEN 1 AND 1024 THEN
        RAISE EXCEPTION 'partition count % is out of range: use 1 (a plain table) to 1024', p_partitions
            USING ERRCODE = 'VC001';
    END IF;
    old_oid := ('ccvec.' || p_table)::regclass;
    IF ccvec.partition_count(p_table) = p_partitions
       AND (p_partitions > 1) = (SELECT relkind = 'p' FROM pg_class WHERE oid = old_oid) THEN
        RETURN false;
    END IF;
    EXECUTE format('LOCK TABLE ccvec.%I IN ACCESS EXCLUSIVE MODE', p_table);

    -- What the table carries, captured before it goes.
    CREATE TEMP TABLE rp_stmt (ord serial, phase text, sql text) ON COMMIT DROP;
    INSERT INTO rp_stmt (phase, sql)
    SELECT 'constraint', format('ALTER TABLE ccvec.%I ADD CONSTRAINT %I %s', p_table, con.conname,
                                pg_get_constraintdef(con.oid))
    FROM pg_constraint con WHERE con.conrelid = old_oid AND con.contype IN ('p', 'u', 'f', 'x')
    ORDER BY con.contype = 'f', con.conname;
    INSERT INTO rp_stmt (phase, sql)
    SELECT 'index', replace(pg_get_indexdef(ix.indexrelid), ' ON ONLY ', ' ON ')
    FROM pg_index ix JOIN pg_class ic ON ic.oid = ix.indexrelid JOIN pg_am am ON am.oid = ic.relam
    WHERE ix.indrelid = old_oid AND am.amname <> 'hnsw'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid AND con.conrelid = old_oid)
    ORDER BY ic.relname;
    INSERT INTO rp_stmt (phase, sql)
    SELECT 'trigger', pg_get_triggerdef(t.oid)
    FROM pg_trigger t WHERE t.tgrelid = old_oid AND NOT t.tgisinternal AND t.tgparentid = 0;
    INSERT INTO rp_stmt (phase, sql)
    SELECT 'grant', format('GRANT %s ON ccvec.%I TO %s', a.privilege_type, p_table,
                           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
    FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = old_oid AND a.grantee <> c.relowner;
    INSERT INTO rp_stmt (phase, sql)
    SELECT 'comment', format('COMMENT ON TABLE ccvec.%I IS %L', p_table, obj_description(old_oid, 'pg_class'))
    WHERE obj_description(old_oid, 'pg_class') IS NOT NULL;

    -- Views over the table, deepest last, saved then dropped deepest first.
    CREATE TEMP TABLE rp_view ON COMMIT DROP AS
    WITH RECURSIVE deps(oid, depth) AS (
        SELECT DISTINCT r.ev_class, 1
        FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = old_oid AND r.ev_class <> old_oid
        UNION
        SELECT r.ev_class, deps.depth + 1
        FROM deps JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
                                  AND d.refclassid = 'pg_class'::regclass
                  JOIN pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> deps.oid
    )
    SELECT c.oid, n.nspname, c.relname, c.relkind, max(deps.depth) AS depth,
           pg_get_viewdef(c.oid) AS def, c.reloptions, obj_description(c.oid, 'pg_class') AS note,
           coalesce((SELECT m.ispopulated FROM pg_matviews m
                     WHERE m.schemaname = n.nspname AND m.matviewname = c.relname), true) AS populated
    FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
    GROUP BY c.oid, n.nspname, c.relname, c.relkind, c.reloptions;
    CREATE TEMP TABLE rp_view_stmt ON COMMIT DROP AS
    SELECT w.depth, 1 AS ord, format('COMMENT ON %s %I.%I IS %L',
               CASE w.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, w.nspname, w.relname, w.note) AS sql
    FROM rp_view w WHERE w.note IS NOT NULL
    UNION ALL
    SELECT w.depth, 2, format('COMMENT ON COLUMN %I.%I.%I IS %L', w.nspname, w.relname, a.attname,
                              col_description(w.oid, a.attnum))
    FROM rp_view w JOIN pg_attribute a ON a.attrelid = w.oid AND a.attnum > 0
    WHERE col_description(w.oid, a.attnum) IS NOT NULL
    UNION ALL
    SELECT w.depth, 3, pg_get_indexdef(ix.indexrelid)
    FROM rp_view w JOIN pg_index ix ON ix.indrelid = w.oid
    UNION ALL
    SELECT w.depth, 4, format('GRANT %s ON %I.%I TO %s', a.privilege_type, w.nspname, w.relname,
                              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
    FROM rp_view w JOIN pg_class c ON c.oid = w.oid, aclexplode(c.relacl) a
    WHERE a.grantee <> c.relowner;
    FOR v IN SELECT * FROM rp_view ORDER BY depth DESC LOOP
        EXECUTE format('DROP %s %I.%I', CASE v.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       v.nspname, v.relname);
    END LOOP;

    -- The new table, its partitions, the rows, then what it carried.
    EXECUTE format('CREATE TABLE ccvec.%I (LIKE ccvec.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                   'INCLUDING STORAGE INCLUDING COMMENTS)%s', tmp, p_table,
                   CASE WHEN p_partitions > 1 THEN ' PARTITION BY HASH (identifier)' ELSE '' END);
    IF p_partitions > 1 THEN
        -- Partition names are free: the old table's partitions (same names) are renamed away first.
        FOR v IN SELECT i.inhrelid::regclass AS part, row_number() OVER () AS n
                 FROM pg_inherits i WHERE i.inhparent = old_oid LOOP
            EXECUTE format('ALTER TABLE %s RENAME TO %I', v.part, p_table || '__old_' || v.n);
        END LOOP;
        FOR k IN 0 .. p_partitions - 1 LOOP
            EXECUTE format('CREATE TABLE ccvec.%I PARTITION OF ccvec.%I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                           p_table || '_p' || k, tmp, p_partitions, k);
        END LOOP;
    END IF;
    EXECUTE format('INSERT INTO ccvec.%I SELECT * FROM ccvec.%I', tmp, p_table);
    EXECUTE format('DROP TABLE ccvec.%I', p_table);
    EXECUTE format('ALTER TABLE ccvec.%I RENAME TO %I', tmp, p_table);
    FOR stmt IN SELECT sql FROM rp_stmt ORDER BY CASE phase WHEN 'constraint' THEN 1 WHEN 'index' THEN 2
                                                         WHEN 'trigger' THEN 3 ELSE 4 END, ord LOOP
        EXECUTE stmt;
    END LOOP;

    FOR v IN SELECT * FROM rp_view ORDER BY depth LOOP
        EXECUTE format('CREATE %s %I.%I%s AS %s%s',
                       CASE v.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, v.nspname, v.relname,
                       CASE WHEN v.reloptions IS NULL THEN ''
                            ELSE format(' WITH (%s)', array_to_string(v.reloptions, ', ')) END,
                       rtrim(v.def, '; ' || chr(10)),
                       CASE WHEN v.relkind <> 'm' THEN '' WHEN v.populated THEN ' WITH DATA' ELSE ' WITH NO DATA' END);
    END LOOP;
    FOR stmt IN SELECT s.sql FROM rp_view_stmt s ORDER BY s.depth, s.ord LOOP
        EXECUTE stmt;
    END LOOP;
    EXECUTE format('ANALYZE ccvec.%I', p_table);
    DROP TABLE rp_stmt, rp_view, rp_view_stmt;
    RETURN true;
END $$;
COMMENT ON FUNCTION ccvec.repartition(text, integer) IS
    'Re-create table ccvec.p_table (image_feature, image_embedding or knn_edge) as p_partitions hash partitions on identifier (1: a plain table), moving every row, in the caller''s transaction (all or nothing). Constraints, indexes, triggers, comment and grants are kept; dependent views are dropped and re-created with their comments, grants and indexes; HNSW indexes are not rebuilt (ccvec db partition rebuilds them per partition, in parallel). Returns false when the table already has that layout. Raises VC001 for another table or a count outside 1..1024.';

-- HNSW per model on a partitioned image_embedding: one index per partition, attached to an index
-- on the parent, so each partition builds on its own connection and a build can resume. Two kinds:
-- 'halfvec' (ccvec's index: cosine on the full halfvec) and 'binary' (the memory-lean option:
-- Hamming on binary_quantize(embedding), one bit per dimension, searched by ccvec.nearest_lean).

CREATE FUNCTION ccvec.vector_index_name(p_kind text, p_model text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    CASE p_kind
        WHEN 'halfvec' THEN RETURN ccvec.embedding_index_name(p_model);
        WHEN 'binary' THEN RETURN 'image_embedding_bq_' || substr(md5(p_model), 1, 12);
        ELSE RAISE EXCEPTION 'unknown index kind %: use halfvec or binary', p_kind USING ERRCODE = 'VC001';
    END CASE;
END $$;
COMMENT ON FUNCTION ccvec.vector_index_name(text, text) IS
    'Name of a model''s HNSW index of kind halfvec (ccvec.embedding_index_name) or binary (image_embedding_bq_ and 12 hex digits of md5(model)). Raises VC001 for another kind.';

CREATE FUNCTION ccvec.vector_index_partition_name(p_kind text, p_model text, p_partition regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT ccvec.vector_index_name(p_kind, p_model) || '_' || (SELECT relname FROM pg_class WHERE oid = p_partition)
$$;
COMMENT ON FUNCTION ccvec.vector_index_partition_name(text, text, regclass) IS
    'Name of a model''s HNSW index of kind halfvec or binary on one partition of image_embedding: the index name and the partition''s name.';

-- The USING … WITH … WHERE … part of an index of either kind, for CREATE INDEX on any target.
CREATE FUNCTION ccvec.vector_index_body(p_kind text, p_model text, p_m integer, p_ef_construction integer)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    RETURN format('USING hnsw (%s) WITH (m = %s, ef_construction = %s) WHERE model = %L',
                  CASE p_kind WHEN 'halfvec' THEN format('(embedding::halfvec(%s)) halfvec_cosine_ops', d)
                              WHEN 'binary' THEN format('(binary_quantize(embedding::halfvec(%1$s))::bit(%1$s)) bit_hamming_ops', d)
                  END,
                  p_m, p_ef_construction, p_model);
END $$;
COMMENT ON FUNCTION ccvec.vector_index_body(text, text, integer, integer) IS
    'The USING hnsw (…) WITH (m, ef_construction) WHERE model = … clause of a model''s index of kind halfvec (cosine on embedding::halfvec(dim)) or binary (Hamming on binary_quantize(embedding::halfvec(dim))::bit(dim)). Raises when the model is not registered.';

CREATE FUNCTION ccvec.create_vector_index_partition(p_kind text, p_model text, p_partition regclass,
                                                    p_m integer DEFAULT 16, p_ef_construction integer DEFAULT 64)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE name text := ccvec.vector_index_partition_name(p_kind, p_model, p_partition);
BEGIN
    IF p_partition NOT IN (SELECT ccvec.table_partitions('image_embedding')) THEN
        RAISE EXCEPTION '% is not a partition of ccvec.image_embedding', p_partition USING ERRCODE = 'VC001';
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s %s', name, p_partition,
                   ccvec.vector_index_body(p_kind, p_model, p_m, p_ef_construction));
    RETURN name;
END $$;
REVOKE EXECUTE ON FUNCTION ccvec.create_vector_index_partition(text, text, regclass, integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION ccvec.create_vector_index_partition(text, text, regclass, integer, integer) IS
    'Create, when missing, the model''s HNSW index of kind halfvec or binary on one partition of image_embedding, for builds that run one partition per connection; ccvec.create_vector_index then attaches them. Raises VC001 when p_partition is not a partition of image_embedding.';

CREATE FUNCTION ccvec.create_vector_index(p_kind text, p_model text, p_m integer DEFAULT 16,
                                          p_ef_construction integer DEFAULT 64)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    name text := ccvec.vector_index_name(p_kind, p_model);
    body text := ccvec.vector_index_body(p_kind, p_model, p_m, p_ef_construction);
    part regclass;
    child text;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'ccvec.image_embedding'::regclass) = 'r' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON ccvec.image_embedding %s', name, body);
        RETURN name;
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON ONLY ccvec.image_embedding %s', name, body);
    FOR part IN SELECT ccvec.table_partitions('image_embedding') LOOP
        child := ccvec.create_vector_index_partition(p_kind, p_model, part, p_m, p_ef_construction);
        IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = format('ccvec.%I', child)::regclass) THEN
            EXECUTE format('ALTER INDEX ccvec.%I ATTACH PARTITION ccvec.%I', name, child);
        END IF;
    END LOOP;
    RETURN name;
END $$;
REVOKE EXECUTE ON FUNCTION ccvec.create_vector_index(text, text, integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION ccvec.create_vector_index(text, text, integer, integer) IS
    'Create, when missing, the model''s HNSW index of kind halfvec or binary; returns its name. On a partitioned image_embedding: an index on the parent with one per partition attached (built here, serially, when missing: ccvec.create_vector_index_partition builds them in parallel first). Raises when the model is not registered.';

CREATE FUNCTION ccvec.drop_vector_index(p_kind text, p_model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE part regclass;
BEGIN
    EXECUTE format('DROP INDEX IF EXISTS ccvec.%I', ccvec.vector_index_name(p_kind, p_model));
    -- Per-partition indexes of a build that never attached them.
    FOR part IN SELECT ccvec.table_partitions('image_embedding') LOOP
        EXECUTE format('DROP INDEX IF EXISTS ccvec.%I', ccvec.vector_index_partition_name(p_kind, p_model, part));
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION ccvec.drop_vector_index(text, text) FROM PUBLIC;
COMMENT ON FUNCTION ccvec.drop_vector_index(text, text) IS
    'Drop the model''s HNSW index of kind halfvec or binary if there is one, with its per-partition indexes.';

CREATE FUNCTION ccvec.has_vector_index(p_kind text, p_model text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT ix.indisvalid FROM pg_index ix
                     WHERE ix.indexrelid = to_regclass('ccvec.' || ccvec.vector_index_name(p_kind, p_model))), false)
$$;
COMMENT ON FUNCTION ccvec.has_vector_index(text, text) IS
    'Whether the model''s HNSW index of kind halfvec or binary exists and is usable (partitioned: every partition''s index attached).';

CREATE OR REPLACE FUNCTION ccvec.create_embedding_index(p_model text, p_m integer DEFAULT 16,
                                                        p_ef_construction integer DEFAULT 64)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT ccvec.create_vector_index('halfvec', p_model, p_m, p_ef_construction)
$$;
COMMENT ON FUNCTION ccvec.create_embedding_index(text, integer, integer) IS
    'Create, when missing, the model''s partial HNSW index (cosine, on embedding::halfvec(dim) where model = p_model) with HNSW parameters m and ef_construction; returns its name. On a partitioned image_embedding, one index per partition attached to the parent''s (ccvec.create_vector_index). Reads every vector of the model: slow on large tables. Raises when the model is not registered.';

CREATE OR REPLACE FUNCTION ccvec.drop_embedding_index(p_model text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT ccvec.drop_vector_index('halfvec', p_model)
$$;
COMMENT ON FUNCTION ccvec.drop_embedding_index(text) IS
    'Drop the model''s HNSW index if there is one (before a bulk load, say), with its per-partition indexes.';

CREATE OR REPLACE FUNCTION ccvec.has_embedding_index(p_model text) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT ccvec.has_vector_index('halfvec', p_model) $$;
COMMENT ON FUNCTION ccvec.has_embedding_index(text) IS
    'Whether the model''s HNSW index exists and is usable (on a partitioned table: every partition''s index attached).';

-- The lean search: p_candidates nearest by Hamming distance between sign bits (through the binary
-- index when it exists), then the p_k nearest of those by cosine on the full halfvec.
CREATE FUNCTION ccvec.nearest_lean(p_model text, p_query halfvec, p_k integer, p_candidates integer DEFAULT 200,
                                   p_exclude uuid DEFAULT NULL)
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql AS $$
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
END $$;
COMMENT ON FUNCTION ccvec.nearest_lean(text, halfvec, integer, integer, uuid) IS
    'The memory-lean search (issue 15; recall in docs/scale.md): the p_candidates images of model p_model nearest to p_query by Hamming distance between sign bits (binary_quantize; through the binary HNSW index of ccvec.create_vector_index(''binary'', …) when it exists), reranked by cosine on the full halfvec, the p_k best returned with similarity = 1 - cosine distance; p_exclude is left out. Exact when p_candidates covers every image. Raises VC001 unless 1 <= p_k <= p_candidates.';

CREATE FUNCTION ccvec.indexed_models(p_kind text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT name FROM ccvec.model WHERE ccvec.has_vector_index(p_kind, name) ORDER BY name
$$;
COMMENT ON FUNCTION ccvec.indexed_models(text) IS
    'Models whose HNSW index of kind halfvec or binary exists and is usable, by name: what a repartition rebuilds.';
