DROP MATERIALIZED VIEW IF EXISTS ccvec.neighbourhood_popularity;
DROP VIEW IF EXISTS ccvec.popularity_source;
DROP MATERIALIZED VIEW IF EXISTS ccvec.inferred_tags;
DROP FUNCTION IF EXISTS ccvec.cluster_average(bigint, real, text);
DROP FUNCTION IF EXISTS ccvec.cluster_graph(bigint, real, boolean, text);
DROP FUNCTION IF EXISTS ccvec.cluster_save(bigint, jsonb);
DROP FUNCTION IF EXISTS ccvec.cluster_nodes(bigint, boolean);
DROP FUNCTION IF EXISTS ccvec.cluster_threshold(bigint, real);
DROP VIEW IF EXISTS ccvec.image_cluster;
DROP TABLE IF EXISTS ccvec.cluster_member;
DROP TABLE IF EXISTS ccvec.cluster_run;
DROP FUNCTION IF EXISTS ccvec.exact_nearest(text, uuid, integer);
DROP FUNCTION IF EXISTS ccvec.knn_add(bigint, uuid[], integer);
DROP FUNCTION IF EXISTS ccvec.knn_insert(bigint, uuid[]);
DROP FUNCTION IF EXISTS ccvec.knn_candidates(text, uuid[], integer, integer);
DROP VIEW IF EXISTS ccvec.knn_current;
DROP TABLE IF EXISTS ccvec.knn_edge;
DROP TABLE IF EXISTS ccvec.knn_run;
DROP FUNCTION IF EXISTS ccvec.similar(uuid, integer, text);
DROP FUNCTION IF EXISTS ccvec.nearest(text, halfvec, integer, uuid);
DO $$ DECLARE idx record; BEGIN
    FOR idx IN SELECT indexname FROM pg_indexes
               WHERE schemaname = 'ccvec' AND indexname LIKE 'image\_embedding\_hnsw\_%' LOOP
        EXECUTE format('DROP INDEX ccvec.%I', idx.indexname);
    END LOOP;
END $$;
DROP FUNCTION IF EXISTS ccvec.has_embedding_index(text);
DROP FUNCTION IF EXISTS ccvec.drop_embedding_index(text);
DROP FUNCTION IF EXISTS ccvec.create_embedding_index(text, integer, integer);
DROP FUNCTION IF EXISTS ccvec.embedding_index_name(text);
DROP FUNCTION IF EXISTS ccvec.model_dim(text);
DROP FUNCTION IF EXISTS ccvec.setting(text);
DROP TABLE IF EXISTS ccvec.setting;
