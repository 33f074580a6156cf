-- Back to the plain layout (HNSW indexes rebuilt serially), then the functions of 0004/0007/0013.
DO $$
DECLARE
    t text;
    models text[];
    m text;
BEGIN
    SELECT array_agg(name) INTO models FROM ccvec.model WHERE ccvec.has_embedding_index(name);
    FOR m IN SELECT name FROM ccvec.model LOOP
        PERFORM ccvec.drop_vector_index('binary', m);
    END LOOP;
    FOR t IN SELECT ccvec.partitionable_tables() LOOP
        PERFORM ccvec.repartition(t, 1);
    END LOOP;
    FOREACH m IN ARRAY coalesce(models, '{}') LOOP
        PERFORM ccvec.drop_embedding_index(m);
        PERFORM ccvec.create_embedding_index(m);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ccvec.create_embedding_index(p_model text, p_m integer DEFAULT 16,
                                                        p_ef_construction integer DEFAULT 64)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE name text := ccvec.embedding_index_name(p_model);
BEGIN
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON ccvec.image_embedding USING hnsw ((embedding::halfvec(%s)) halfvec_cosine_ops)
         WITH (m = %s, ef_construction = %s) WHERE model = %L',
        name, ccvec.model_dim(p_model), p_m, p_ef_construction, p_model);
    RETURN name;
END $$;
COMMENT ON FUNCTION ccvec.create_embedding_index(text, integer, integer) IS
    'Create, when missing, the model''s partial HNSW index (cosine, on embedding::halfvec(dim) where model = p_model) with HNSW parameters m and ef_construction; returns its name. Reads every vector of the model: slow on large tables. Raises when the model is not registered.';

CREATE OR REPLACE FUNCTION ccvec.drop_embedding_index(p_model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    EXECUTE format('DROP INDEX IF EXISTS ccvec.%I', ccvec.embedding_index_name(p_model));
END $$;
COMMENT ON FUNCTION ccvec.drop_embedding_index(text) IS
    'Drop the model''s HNSW index if there is one (before a bulk load, say).';

CREATE OR REPLACE FUNCTION ccvec.has_embedding_index(p_model text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT to_regclass('ccvec.' || ccvec.embedding_index_name(p_model)) IS NOT NULL
$$;
COMMENT ON FUNCTION ccvec.has_embedding_index(text) IS
    'Whether the model''s HNSW index exists.';

DROP FUNCTION ccvec.indexed_models(text);
DROP FUNCTION ccvec.nearest_lean(text, halfvec, integer, integer, uuid);
DROP FUNCTION ccvec.has_vector_index(text, text);
DROP FUNCTION ccvec.drop_vector_index(text, text);
DROP FUNCTION ccvec.create_vector_index(text, text, integer, integer);
DROP FUNCTION ccvec.create_vector_index_partition(text, text, regclass, integer, integer);
DROP FUNCTION ccvec.vector_index_body(text, text, integer, integer);
DROP FUNCTION ccvec.vector_index_partition_name(text, text, regclass);
DROP FUNCTION ccvec.vector_index_name(text, text);
DROP FUNCTION ccvec.repartition(text, integer);
DROP FUNCTION ccvec.table_partitions(text);
DROP FUNCTION ccvec.partition_count(text);
DROP FUNCTION ccvec.partitionable_tables();
