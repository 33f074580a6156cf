DROP FUNCTION ccvec.require_cluster_run(bigint);
