DROP TRIGGER input_change ON ccvec.knn_run;
DROP TRIGGER input_change ON ccvec.cluster_run;
CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ccvec.knn_run
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ccvec.cluster_run
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
DROP FUNCTION ccvec.input_changes_settled();
