-- Review of 0058. The sequence is not transactional: a change drawn but not committed when a
-- refresh read ccvec.input_changes() (a clustering saved in that instant) counted as seen, though
-- the refresh could not see it, and the scores were then neither refreshed nor stale. A refresh now
-- reads the value once the writers of the watched tables in flight have committed. And `graph prune`
-- (DELETE of runs nothing reads) no longer marks the scores stale: a refresh for nothing, minutes
-- at 1M images.
CREATE FUNCTION ccvec.input_changes_settled() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- SHARE waits for transactions writing these tables (ROW EXCLUSIVE) to end, and lets readers
    -- on; held until the caller's commit (ccvec refresh commits at once)
    LOCK TABLE ccvec.knn_run, ccvec.cluster_run, ccvec.web_rank_release, ccvec.novelty_model IN SHARE MODE;
    RETURN ccvec.input_changes();
END $$;
COMMENT ON FUNCTION ccvec.input_changes_settled() IS
    'ccvec.input_changes() once every transaction writing the graph, clustering, ranks or novelty tables has ended (a SHARE lock on them until the caller commits): what ccvec refresh starts from, so a change it cannot see is never counted as seen.';

DROP TRIGGER input_change ON ccvec.knn_run;
DROP TRIGGER input_change ON ccvec.cluster_run;
-- a deleted run is one nothing reads (graph prune); what the scores read is written, not deleted
CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR TRUNCATE ON ccvec.knn_run
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR TRUNCATE ON ccvec.cluster_run
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
