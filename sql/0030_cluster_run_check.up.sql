-- `ccvec clusters --run 999` printed an empty table and "0 clusters over 0 images", and
-- `export-clusters --run 999` a raw "the query returned no row": a cluster run that does not exist
-- is now one VC002 line, as ccvec.load_errors does for load runs (0027).

CREATE FUNCTION ccvec.require_cluster_run(p_run bigint) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE newest bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ccvec.cluster_run r WHERE r.id = p_run) THEN
        SELECT max(r.id) INTO newest FROM ccvec.cluster_run r;
        RAISE EXCEPTION 'cluster run % does not exist (%)', p_run,
            CASE WHEN newest IS NULL THEN 'nothing has been clustered yet: run `ccvec cluster`'
                 ELSE format('the newest is run %s', newest) END
            USING ERRCODE = 'VC002';
    END IF;
END $$;
COMMENT ON FUNCTION ccvec.require_cluster_run(bigint) IS
    'Raises VC002 (naming the newest run) unless cluster run p_run exists: the check behind the --run option of `ccvec clusters` and `ccvec export-clusters`.';
