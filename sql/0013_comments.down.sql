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
COMMENT ON MATERIALIZED VIEW ccvec.inferred_tags IS NULL;
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
